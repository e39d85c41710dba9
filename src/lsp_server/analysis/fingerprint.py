"""Fingerprints that identify a finding across edits elsewhere in the file.

A fingerprint is the rule, the qualified name of the enclosing function or class, the normalised
text of the flagged lines, and the finding's rank among identical ones in that unit. Lines moving
up or down, edits to other functions or to other lines of the same function leave it unchanged;
it changes only when the code it points at (or the name of the unit holding it) changes.

The cost is linear in the findings: each node's children are listed once and a line descends to
its scope by bisection. A document's previous tree (`IncrementalParser`) makes its next parse
incremental.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
from collections import Counter
from collections.abc import Sequence

import attrs
from tree_sitter import Node, Point, Query, QueryCursor, Tree

from lsp_server.analysis.languages import grammar, parser
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
_SPLIT_DEPTH = 6  # an incremental parse is told of at most 2**6 changed blocks of lines


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _scope_name(node: Node) -> str:
    name = node.child_by_field_name("name") or node.child_by_field_name("type")
    return name.text.decode("utf-8", "replace") if name is not None else node.type


class Scopes:
    """The qualified names (`Outer.method`) of the scopes around lines of one tree.

    A line descends from the root into the first named child whose rows hold it. Siblings never
    overlap, so their end rows are sorted and that child is found by bisection; each node's
    children are listed once per tree, however many findings fall inside it. Once listing has
    cost about what finding every scope in the tree does (many findings), the descent also stops
    where no scope lies further down.
    """

    def __init__(self, tree: Tree, language: str) -> None:
        self._root = tree.root_node
        self._language = language
        self._kinds = _SCOPES[language]
        self._spans: list[tuple[int, int]] | None = None
        # The query visits every node, ~15 times faster than listing a child here.
        self._unpruned = self._root.descendant_count // 15
        self._listed: dict[int, tuple[list[int], list[Node]]] = {}
        self._names: dict[int, str] = {}

    def _holds_scopes(self, node: Node) -> bool:
        """Whether a scope other than `node` may lie inside it (spans nest or are disjoint)."""
        if self._spans is None:
            if self._unpruned > 0:
                return True
            captures = QueryCursor(_scope_query(self._language)).captures(self._root)
            # (start, -end): at one start, the enclosing span comes first
            self._spans = sorted((n.start_byte, -n.end_byte) for n in captures.get("scope", ()))
        start, end = node.start_byte, node.end_byte
        inside = bisect.bisect_left(self._spans, (end,)) - bisect.bisect_left(
            self._spans, (start, -end)
        )
        return inside > (node.type in self._kinds)

    def _children(self, node: Node) -> tuple[list[int], list[Node]]:
        listed = self._listed.get(node.id)
        if listed is None:
            children = node.named_children if self._holds_scopes(node) else []
            self._unpruned -= len(children)
            listed = self._listed[node.id] = ([c.end_point[0] for c in children], children)
        return listed

    def at(self, line: int) -> str:
        """The qualified name of the scopes around the start of `line`."""
        if (known := self._names.get(line)) is not None:
            return known
        names: list[str] = []
        node = self._root
        while True:
            ends, children = self._children(node)
            i = bisect.bisect_left(ends, line)
            if i == len(children) or children[i].start_point[0] > line:
                break
            node = children[i]
            if node.type in self._kinds:
                names.append(_scope_name(node))
        self._names[line] = name = ".".join(names)
        return name


@functools.cache
def _scope_query(language: str) -> Query:
    kinds = " ".join(f"({kind})" for kind in sorted(_SCOPES[language]))
    return Query(grammar(language), f"[{kinds}] @scope")


class IncrementalParser:
    """The last tree of one document, so that parsing its next text re-reads only the lines that
    changed. Not thread-safe: a document is reviewed by one thread at a time."""

    def __init__(self) -> None:
        self._last: tuple[str, bytes, Tree] | None = None

    def parse(self, language: str, source: bytes) -> Tree:
        tree = None
        if self._last is not None and self._last[0] == language:
            _, old, tree = self._last
            for block in reversed(_changed_blocks(old, source)):
                tree.edit(*block)  # last block first: the earlier ones keep their positions
            tree = parser(language).parse(source, tree)
        if tree is None or tree.root_node.has_error:
            # Error recovery may differ from a fresh parse's after an incremental one: broken
            # code is parsed afresh, so its fingerprints are the ones `gantry check` computes.
            tree = parser(language).parse(source)
        self._last = (language, source, tree)
        return tree


def _changed_blocks(old: bytes, new: bytes) -> list[tuple]:
    """`Tree.edit` arguments for the runs of lines that differ between two texts, in order.

    One edit spanning the first to the last difference would make tree-sitter re-read everything
    between two far-apart edits; runs found by a common prefix and suffix, split around a line
    that occurs once on both sides (a patience-diff step), keep that to the lines that changed.
    """
    old_lines, new_lines = old.split(b"\n"), new.split(b"\n")  # tree-sitter's rows
    # where line k starts: the lengths of the lines before it, and their k newlines
    old_lengths = list(itertools.accumulate(map(len, old_lines), initial=0))
    new_lengths = list(itertools.accumulate(map(len, new_lines), initial=0))
    runs: list[tuple[int, int, int, int]] = []

    def diff(o1: int, o2: int, n1: int, n2: int, depth: int) -> None:
        while o1 < o2 and n1 < n2 and old_lines[o1] == new_lines[n1]:
            o1, n1 = o1 + 1, n1 + 1
        while o1 < o2 and n1 < n2 and old_lines[o2 - 1] == new_lines[n2 - 1]:
            o2, n2 = o2 - 1, n2 - 1
        if o1 == o2 and n1 == n2:
            return
        anchor = _anchor(old_lines, o1, o2, new_lines, n1, n2) if depth else None
        if anchor is None:
            runs.append((o1, o2, n1, n2))
            return
        i, j = anchor
        diff(o1, i, n1, j, depth - 1)
        diff(i + 1, o2, j + 1, n2, depth - 1)

    diff(0, len(old_lines), 0, len(new_lines), _SPLIT_DEPTH)
    blocks = []
    for o1, o2, n1, n2 in runs:
        start = old_lengths[o1] + o1
        old_end = min(old_lengths[o2] + o2, len(old))  # the last line has no newline after it
        added = new[new_lengths[n1] + n1 : min(new_lengths[n2] + n2, len(new))]
        blocks.append(
            (
                start,
                old_end,
                start + len(added),
                Point(o1, 0),
                _end_point(o1, old[start:old_end]),
                _end_point(o1, added),
            )
        )
    return blocks


def _end_point(row: int, text: bytes) -> Point:
    """Where `text` ends when it starts at the beginning of `row`."""
    return Point(row + text.count(b"\n"), len(text) - (text.rfind(b"\n") + 1))


def _anchor(
    old: list[bytes], o1: int, o2: int, new: list[bytes], n1: int, n2: int
) -> tuple[int, int] | None:
    """A line found exactly once in old[o1:o2] and once in new[n1:n2], nearest the middle of the
    old run, as (old index, new index)."""
    if o2 - o1 < 2 or n2 - n1 < 2:
        return None
    old_counts, new_counts = Counter(old[o1:o2]), Counter(new[n1:n2])
    middle = (o1 + o2) // 2
    best = None
    for i in range(o1, o2):
        line = old[i]
        if old_counts[line] == 1 and new_counts[line] == 1:
            if best is None or abs(i - middle) < abs(best - middle):
                best = i
            elif i > middle:
                break
    if best is None:
        return None
    return best, new.index(old[best], n1, n2)


def fingerprint_findings(
    findings: Sequence[Finding],
    text: str,
    language: str | None,
    trees: IncrementalParser | None = None,
) -> list[Finding]:
    """The findings with their fingerprints set. `trees`, the document's parser from its last
    review, makes the parse incremental; the fingerprints are the same without it."""
    if not findings:
        return []
    lines = text.splitlines()
    scopes = None
    if language in _SCOPES:
        tree = (trees or IncrementalParser()).parse(language, text.encode("utf-8", "surrogatepass"))
        scopes = Scopes(tree, language)
    seen: Counter[tuple[str, str, str]] = Counter()
    out = []
    for finding in findings:
        first, last = finding.start[0], min(finding.end[0], finding.start[0] + _MAX_LINES - 1)
        flagged = _normalise(" ".join(lines[first : last + 1]))
        scope = scopes.at(first) if scopes is not None else ""
        key = (finding.rule, scope, flagged)
        rank = seen[key]
        seen[key] += 1
        digest = hashlib.sha256("\0".join((*key, str(rank))).encode()).hexdigest()[:20]
        out.append(attrs.evolve(finding, fingerprint=digest))
    return out
