"""Fingerprints that identify a finding across edits elsewhere in the file.

A fingerprint is the rule, the qualified name of the enclosing function or class, the normalised
text of the flagged lines, and the finding's rank among identical ones in that unit. Lines moving
up or down, edits to other functions or to other lines of the same function leave it unchanged;
it changes only when the code it points at (or the name of the unit holding it) changes.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

import attrs

from lsp_server.analysis.languages import parser
from lsp_server.review.findings import Finding

# Node types that open a named scope, per language, and the field holding their name.
_SCOPES: dict[str, frozenset[str]] = {
    "python": frozenset({"function_definition", "class_definition"}),
    "javascript": frozenset({"function_declaration", "class_declaration", "method_definition"}),
    "typescript": frozenset(
        {"function_declaration", "class_declaration", "method_definition", "interface_declaration"}
    ),
    "go": frozenset({"function_declaration", "method_declaration", "type_spec"}),
    "rust": frozenset({"function_item", "impl_item", "struct_item", "trait_item", "enum_item"}),
    "java": frozenset({"class_declaration", "method_declaration", "interface_declaration"}),
}
_SCOPES["tsx"] = _SCOPES["typescript"]
_MAX_LINES = 8  # longer findings are identified by their first lines


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _scope_name(node) -> str:
    name = node.child_by_field_name("name") or node.child_by_field_name("type")
    return name.text.decode("utf-8", "replace") if name is not None else node.type


def enclosing_scopes(tree, language: str, line: int) -> str:
    """The qualified name (`Outer.method`) of the scopes around the start of `line`."""
    scopes = _SCOPES.get(language, frozenset())
    names: list[str] = []
    node = tree.root_node
    while True:
        for child in node.named_children:
            if child.start_point[0] <= line <= child.end_point[0]:
                if child.type in scopes:
                    names.append(_scope_name(child))
                node = child
                break
        else:
            return ".".join(names)


def fingerprint_findings(
    findings: Sequence[Finding], text: str, language: str | None
) -> list[Finding]:
    """The findings with their fingerprints set."""
    lines = text.splitlines()
    tree = (
        parser(language).parse(text.encode("utf-8", "surrogatepass"))
        if language in _SCOPES
        else None
    )
    seen: Counter[tuple[str, str, str]] = Counter()
    out = []
    for finding in findings:
        first, last = finding.start[0], min(finding.end[0], finding.start[0] + _MAX_LINES - 1)
        flagged = _normalise(" ".join(lines[first : last + 1]))
        scope = enclosing_scopes(tree, language, first) if tree is not None else ""
        key = (finding.rule, scope, flagged)
        rank = seen[key]
        seen[key] += 1
        digest = hashlib.sha256("\0".join((*key, str(rank))).encode()).hexdigest()[:20]
        out.append(attrs.evolve(finding, fingerprint=digest))
    return out
