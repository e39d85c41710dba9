"""Symbol extraction with tree-sitter: definitions, their signatures, docstrings and the
identifiers each one uses. Pure functions of (language, bytes), so they run in worker processes.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import re

import attrs
from tree_sitter import Node, Query, QueryCursor

from lsp_server.analysis.languages import grammar, parser
from lsp_server.analysis.symbol_queries import (
    BETWEEN_COMMENT_KINDS,
    COMMENT_KINDS,
    CONTAINER_KINDS,
    DEFINITION_QUERIES,
    IDENTIFIER_KINDS,
    WRAPPER_KINDS,
)
from lsp_server.store.records import ContentRecord, SymbolRecord

MAX_SIGNATURE_CHARS = 1000
_PY_CONSTANT = re.compile(r"_*[A-Z][A-Z0-9_]*$")
_STRING_PREFIX = re.compile(r"^[rRuUbBfF]*('''|\"\"\"|'|\")")
_GO_RECEIVER_TYPE = re.compile(r"([A-Za-z_]\w*)\s*(?:\[[^\]]*\])?\s*\)\s*$")


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def count_lines(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


@attrs.frozen
class _Queries:
    definitions: Query
    identifiers: Query


@functools.cache
def _queries(language: str) -> _Queries:
    """Compiled once per language and process: compiling costs far more than running."""
    lang = grammar(language)
    kinds = [kind for kind in IDENTIFIER_KINDS if lang.id_for_node_kind(kind, True)]
    alternatives = " ".join(f"({kind})" for kind in kinds)
    return _Queries(Query(lang, DEFINITION_QUERIES[language]), Query(lang, f"[{alternatives}] @id"))


@attrs.define
class _Definition:
    node: Node
    name_node: Node
    kind: str
    name: str
    start: int
    end: int
    container: str | None = None
    refs: set[bytes] = attrs.Factory(set)


def extract_content(content_digest: str, language: str, data: bytes) -> ContentRecord:
    """Parse one file's bytes into the record the store keeps for that content."""
    return ContentRecord(
        content_hash=content_digest,
        language=language,
        lines=count_lines(data),
        bytes=len(data),
        symbols=tuple(extract_symbols(language, data)),
    )


def extract_symbols(language: str, data: bytes) -> list[SymbolRecord]:
    tree = parser(language).parse(data)
    queries = _queries(language)
    definitions = _definitions(language, queries.definitions, tree.root_node, data)
    _assign_containers(language, definitions, data)
    _assign_refs(definitions, queries.identifiers, tree.root_node, data)
    # Rust impl blocks only serve as containers of their methods.
    return [_record(language, d, data) for d in definitions if d.kind != "impl"]


def _definitions(language: str, query: Query, root: Node, data: bytes) -> list[_Definition]:
    """Definitions in document order; one per node, the earliest matching pattern deciding."""
    chosen: dict[tuple[int, int], tuple[int, _Definition]] = {}
    for pattern, captures in QueryCursor(query).matches(root):
        name_node = captures["name"][0]
        kind, nodes = next((k, v) for k, v in captures.items() if k != "name")
        node = nodes[0]
        key = (node.start_byte, node.end_byte)
        if key in chosen and chosen[key][0] <= pattern:
            continue
        name = data[name_node.start_byte : name_node.end_byte].decode("utf-8", "replace")
        if not _wanted(language, kind, node, name):
            continue
        chosen[key] = (pattern, _Definition(node, name_node, kind, name, *key))
    definitions = [d for _, d in chosen.values()]
    definitions.sort(key=lambda d: (d.start, -d.end))
    return definitions


def _wanted(language: str, kind: str, node: Node, name: str) -> bool:
    if kind != "constant":
        return True
    if language == "python":
        return bool(_PY_CONSTANT.match(name))
    if language in ("javascript", "typescript", "tsx"):
        declaration = node.parent
        return declaration is not None and declaration.children[0].type == "const"
    return True


def _assign_containers(language: str, definitions: list[_Definition], data: bytes) -> None:
    """Container = the nearest enclosing definition; functions directly inside a class-like
    definition are methods. Go methods belong to their receiver's type."""
    stack: list[_Definition] = []
    for definition in definitions:
        while stack and stack[-1].end <= definition.start:
            stack.pop()
        parent = stack[-1] if stack else None
        if parent is not None:
            definition.container = parent.name
            if definition.kind == "function" and parent.kind in CONTAINER_KINDS:
                definition.kind = "method"
        if language == "go" and definition.kind == "method":
            receiver = definition.node.child_by_field_name("receiver")
            if receiver is not None:
                text = data[receiver.start_byte : receiver.end_byte].decode("utf-8", "replace")
                match = _GO_RECEIVER_TYPE.search(text)
                definition.container = match.group(1) if match else None
        if definition.kind == "impl":
            definition.name = definition.name.split("<", 1)[0].strip()
        stack.append(definition)


def _assign_refs(definitions: list[_Definition], query: Query, root: Node, data: bytes) -> None:
    """Give each identifier to the innermost definition containing it, so a class's refs are
    those of its own body, not its methods'. A definition's own name is not a use."""
    if not definitions:
        return
    own_names = {d.name_node.start_byte for d in definitions}
    stack: list[_Definition] = []
    upcoming = iter(definitions)
    pending = next(upcoming, None)
    # Captures do not come in document order; the sweep below needs them sorted.
    spans = sorted(
        (n.start_byte, n.end_byte) for n in QueryCursor(query).captures(root).get("id", ())
    )
    for start, end in spans:
        while pending is not None and pending.start <= start:
            while stack and stack[-1].end <= pending.start:
                stack.pop()
            stack.append(pending)
            pending = next(upcoming, None)
        while stack and stack[-1].end <= start:
            stack.pop()
        if stack and start not in own_names:
            stack[-1].refs.add(data[start:end])


def _record(language: str, definition: _Definition, data: bytes) -> SymbolRecord:
    node = definition.node
    (start_line, start_col), (end_line, end_col) = node.start_point, node.end_point
    own_text = data[definition.start : definition.end]
    return SymbolRecord(
        name=definition.name,
        kind=definition.kind,
        container=definition.container,
        start_line=start_line,
        start_col=start_col,
        end_line=end_line,
        end_col=end_col,
        signature=_signature(node, data),
        docstring=_python_docstring(node, data)
        if language == "python"
        else _leading_comment(node, data),
        symbol_hash=hashlib.sha256(own_text).hexdigest(),
        refs=tuple(sorted(ref.decode("utf-8", "replace") for ref in definition.refs)),
    )


def _body(node: Node) -> Node | None:
    body = node.child_by_field_name("body")
    if body is None:
        value = node.child_by_field_name("value") or node.child_by_field_name("type")
        body = value.child_by_field_name("body") if value is not None else None
    return body


def _signature(node: Node, data: bytes) -> str:
    """The definition's header up to its body (the whole first line when it has no body)."""
    body = _body(node)
    end = body.start_byte if body is not None and body.start_byte > node.start_byte else None
    if end is not None:
        # Python: stop at the header's colon, before any comment between it and the body.
        colon = next((c for c in node.children if c.type == ":" and c.start_byte < end), None)
        end = colon.start_byte if colon is not None else end
    if end is None:  # no body field (Go type specs, declarations): the first line, before "{"
        newline = data.find(b"\n", node.start_byte, node.end_byte)
        end = node.end_byte if newline == -1 else newline
        brace = data.find(b"{", node.start_byte, end)
        end = end if brace == -1 else brace
    header = data[node.start_byte : min(end, node.start_byte + MAX_SIGNATURE_CHARS)]
    return header.decode("utf-8", "replace").rstrip().rstrip("{:").rstrip()


def _python_docstring(node: Node, data: bytes) -> str | None:
    body = node.child_by_field_name("body")
    if body is None or body.named_child_count == 0:
        return None
    first = body.named_children[0]
    if first.type != "expression_statement" or first.named_children[0].type != "string":
        return None
    text = data[first.start_byte : first.end_byte].decode("utf-8", "replace")
    prefix = _STRING_PREFIX.match(text)
    if prefix is None:
        return None
    quote = prefix.group(1)
    inner = text[prefix.end() :]
    inner = inner.removesuffix(quote)
    return inspect.cleandoc(inner) or None


def _leading_comment(node: Node, data: bytes) -> str | None:
    """The block of comments right above the definition (or above its export/declaration)."""
    anchor = node
    while anchor.parent is not None and anchor.parent.type in WRAPPER_KINDS:
        anchor = anchor.parent
    comments: list[Node] = []
    row = anchor.start_point[0]
    sibling = anchor.prev_named_sibling
    while sibling is not None and sibling.end_point[0] >= row - 1:
        if sibling.type in COMMENT_KINDS:
            comments.append(sibling)
        elif sibling.type not in BETWEEN_COMMENT_KINDS:
            break
        row = sibling.start_point[0]
        sibling = sibling.prev_named_sibling
    if not comments:
        return None
    lines = []
    for comment in reversed(comments):
        text = data[comment.start_byte : comment.end_byte].decode("utf-8", "replace")
        lines.extend(_comment_lines(text))
    return "\n".join(lines).strip() or None


def _comment_lines(text: str) -> list[str]:
    if text.startswith("/*"):
        text = text.removeprefix("/**").removeprefix("/*").removesuffix("*/")
        return [line.strip().removeprefix("*").strip() for line in text.splitlines()]
    return [text.lstrip("/!").strip()]
