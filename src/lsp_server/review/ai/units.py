"""Review units: the pieces of a file an AI review looks at, and caches, one at a time.

A file splits into functions, methods, classes and top-level statement blocks, for every
language through the same walk over the captures of `unit_queries`:

* a function or method spans its own lines, with the decorators, attributes and comments right
  above it (no blank line between): they say what it is meant to do;
* a class is its header and body *minus its methods* (and nested classes): each method is a unit
  of its own, so editing one method leaves the class's digest, and every other method's, alone,
  and no line is sent twice. What remains is what only the class holds (fields, class
  attributes, the header's bases). A class where nothing remains but its header and docstring is
  not a unit: there is nothing left to review;
* consecutive top-level statements that are not definitions form a block, imports a block of
  their own; a block of nothing but comments or a docstring is not a unit.

Nested functions stay inside their function. Rust `mod` and TypeScript `namespace` bodies are
split as top-level code is, their names prefixing their members'.

Lines are 0-based tree-sitter rows, split at "\\n" only (a CRLF file keeps its "\\r" at line ends,
which the digest ignores). A unit covers document lines [start_line, end_line); its text is made
of whole lines, those of `spans` in order: one span for all but a class whose methods were taken
out. `document_line` maps a line of the text back to the document.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import re
from collections.abc import Iterable
from typing import Literal

import attrs
from tree_sitter import Node, Query, QueryCursor, Tree

from lsp_server.analysis.languages import grammar, parser
from lsp_server.analysis.symbol_queries import IDENTIFIER_KINDS
from lsp_server.review.ai.unit_queries import CALL_QUERIES, LEADING_KINDS, UNIT_QUERIES

UnitKind = Literal["function", "method", "class", "block", "imports"]
LANGUAGES: tuple[str, ...] = tuple(UNIT_QUERIES)

# Trailing blanks at line ends only: "\r" of CRLF checkouts (Windows editor vs Linux CI) and
# what editors strip on save mean nothing to a reviewer, so they must not cost a new review.
# Anything else (indentation, blank lines) is kept: the line structure is what a cached
# finding's unit-relative range points into.
_TRAILING_BLANKS = re.compile(rb"[ \t\r\f\v]+$", re.MULTILINE)
_INERT_KINDS = frozenset(("pass_statement", "empty_statement")) | LEADING_KINDS
_DEFINITION_KINDS = ("function", "class", "scope")
_MEMBER_ENDS = frozenset((";", ","))


@attrs.frozen
class Unit:
    language: str
    kind: UnitKind
    name: str
    """Qualified by its containers (`Class.method`, Go `Type.Method`, Rust `tests.case`);
    blocks are `<block>` and `<imports>` (prefixed likewise). Not unique within a file."""
    start_line: int
    """First document line (0-based, inclusive)."""
    end_line: int
    """One past the last document line (0-based, exclusive)."""
    text: str
    refs: tuple[str, ...]
    """The distinct identifiers the unit uses (names, attributes, fields), sorted; not its own
    name, and not those of the methods a class unit leaves out."""
    calls: tuple[str, ...]
    """The subset of `refs` that the unit calls or constructs."""
    digest: str
    """sha256 of `text` with trailing blanks removed from each line."""
    spans: tuple[tuple[int, int], ...]
    """The document line ranges [start, end) the text is made of, in order."""

    @property
    def qualified_name(self) -> str:
        """`name`, as the prompt and the AI fingerprints call it."""
        return self.name

    def document_line(self, line: int) -> int:
        """The document line of line `line` (0-based) of the unit's text."""
        for start, end in self.spans:
            if 0 <= line < end - start:
                return start + line
            line -= end - start
        raise IndexError(f"line {line} is past the end of unit {self.name}")

    def unit_line(self, document_line: int) -> int | None:
        """The line of the unit's text showing `document_line`, or None where it has none."""
        offset = 0
        for start, end in self.spans:
            if start <= document_line < end:
                return offset + document_line - start
            offset += end - start
        return None


def digest_text(text: str | bytes) -> str:
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return hashlib.sha256(_TRAILING_BLANKS.sub(b"", data)).hexdigest()


@attrs.frozen
class _Queries:
    units: Query
    names: Query
    """@id: every identifier; @call: those called."""


@functools.cache
def _queries(language: str) -> _Queries:
    """Compiled once per language and process: compiling costs far more than running."""
    lang = grammar(language)
    kinds = " ".join(f"({kind})" for kind in IDENTIFIER_KINDS if lang.id_for_node_kind(kind, True))
    names = f"[{kinds}] @id\n{CALL_QUERIES[language]}"
    return _Queries(Query(lang, UNIT_QUERIES[language]), Query(lang, names))


@attrs.frozen
class _Definition:
    kind: str  # function | class | scope | import
    name: str
    name_start: int
    body: Node | None


@attrs.define
class _Draft:
    kind: UnitKind
    name: str
    spans: list[tuple[int, int]]
    segments: list[tuple[int, int]]
    """Byte ranges whose identifiers are the unit's."""
    nodes: list[Node] = attrs.Factory(list)
    """For blocks and classes: the statements that decide whether anything is left to review."""
    lines: tuple[int, int] = (0, 0)
    """The document lines [start, end) the unit's source occupies (a class: methods included)."""
    refs: set[bytes] = attrs.Factory(set)
    calls: set[bytes] = attrs.Factory(set)


def split_units(language: str, source: str | bytes, tree: Tree | None = None) -> tuple[Unit, ...]:
    """The review units of one file, in document order.

    `tree`, when the caller has one (an incremental parse), must be the parse of `source`.
    Raises ValueError for a language without unit queries (see LANGUAGES)."""
    if language not in UNIT_QUERIES:
        raise ValueError(f"no review units for {language!r}; units exist for {LANGUAGES}")
    data = source.encode("utf-8", "surrogatepass") if isinstance(source, str) else source
    if tree is None:
        tree = parser(language).parse(data)
    queries = _queries(language)
    found = _definitions(queries.units, tree.root_node, data)
    drafts: list[_Draft] = []
    own_names: set[int] = set()
    _Splitter(found, drafts, own_names).scope(tree.root_node.children, "")
    drafts = [d for d in drafts if d.kind not in ("class", "block", "imports") or _live(d)]
    _assign_names(drafts, queries.names, tree.root_node, data, own_names)
    starts = _line_starts(data)
    return tuple(_unit(language, draft, data, starts) for draft in drafts)


def _key(node: Node) -> tuple[int, int, str]:
    return node.start_byte, node.end_byte, node.type


def _definitions(query: Query, root: Node, data: bytes) -> dict[tuple[int, int, str], _Definition]:
    """Captured node -> its definition; the earliest pattern wins where several match a node."""
    chosen: dict[tuple[int, int, str], tuple[int, _Definition]] = {}
    for pattern, captures in QueryCursor(query).matches(root):
        kind = next(k for k in ("function", "class", "scope", "import") if k in captures)
        key = _key(captures[kind][0])
        if key in chosen and chosen[key][0] <= pattern:
            continue
        name, name_start = "", -1
        if "name" in captures:
            node = captures["name"][0]
            name, name_start = (
                data[node.start_byte : node.end_byte].decode("utf-8", "replace"),
                node.start_byte,
            )
        if "receiver" in captures:
            receiver = captures["receiver"][0]
            name = (
                data[receiver.start_byte : receiver.end_byte].decode("utf-8", "replace")
                + "."
                + name
            )
        body = captures["body"][0] if "body" in captures else None
        chosen[key] = (pattern, _Definition(kind, name, name_start, body))
    return {key: definition for key, (_, definition) in chosen.items()}


def _last_row(node: Node) -> int:
    row, column = node.end_point
    return row - 1 if column == 0 and row > node.start_point[0] else row


class _Splitter:
    def __init__(
        self,
        found: dict[tuple[int, int, str], _Definition],
        out: list[_Draft],
        own_names: set[int],
    ) -> None:
        self.found = found
        self.out = out
        self.own_names = own_names

    def scope(self, nodes: Iterable[Node], prefix: str) -> None:
        """Top-level code (or a module-like body): definitions, and blocks between them."""
        group: list[Node] = []
        group_kind: UnitKind = "block"
        pending: list[Node] = []  # comments and attributes not placed yet
        last_row = -1

        def flush() -> None:
            if group:
                name = prefix + ("<imports>" if group_kind == "imports" else "<block>")
                self.out.append(_block(group_kind, name, group))
                group.clear()

        for node in nodes:
            if not node.is_named:
                continue
            if node.type in LEADING_KINDS:
                pending.append(node)
                continue
            definition = self.found.get(_key(node))
            if definition is None or definition.kind == "import":
                kind: UnitKind = "block" if definition is None else "imports"
                if group and kind != group_kind:
                    flush()
                group_kind = kind
                group.extend(pending)
                pending.clear()
                group.append(node)
            else:
                attached, loose = _attached(pending, node, last_row)
                group.extend(loose)
                pending.clear()
                flush()
                self.definition(definition, node, attached, prefix, in_class=False)
            last_row = _last_row(node)
        group.extend(pending)
        flush()

    def definition(
        self,
        definition: _Definition,
        node: Node,
        attached: list[Node],
        prefix: str,
        in_class: bool,
    ) -> tuple[int, int]:
        """Emit the units of one definition; returns its byte range (with what is attached)."""
        first = attached[0] if attached else node
        name = prefix + definition.name
        self.own_names.add(definition.name_start)
        span = (first.start_point[0], _last_row(node) + 1)
        extent = (first.start_byte, node.end_byte)
        if definition.kind == "function":
            kind: UnitKind = "method" if in_class else "function"
            self.out.append(_Draft(kind, name, [span], [extent], lines=span))
        elif definition.kind == "scope":
            assert definition.body is not None
            self.scope(definition.body.children, name + ".")
        else:
            assert definition.body is not None
            self.container(name, definition.body, span, extent)
        return extent

    def container(
        self, name: str, body: Node, span: tuple[int, int], extent: tuple[int, int]
    ) -> None:
        """A class: its methods (and nested classes) are units of their own; the rest is its."""
        draft = _Draft("class", name, [], [], lines=span)
        self.out.append(draft)
        removed_lines: list[tuple[int, int]] = []
        removed_bytes: list[tuple[int, int]] = []
        pending: list[Node] = []
        last_row = body.prev_sibling.end_point[0] if body.prev_sibling else span[0]
        for node in body.children:
            if not node.is_named:
                continue
            definition = self.found.get(_key(node))
            if node.type in LEADING_KINDS:
                pending.append(node)
                continue
            if definition is not None and definition.kind in _DEFINITION_KINDS:
                attached, loose = _attached(pending, node, last_row)
                draft.nodes.extend(loose)
                pending.clear()
                start, end = self.definition(definition, node, attached, name + ".", True)
                removed_bytes.append((start, end))
                removed_lines.append(
                    _own_lines(attached[0] if attached else node, node, body, span[1])
                )
            else:
                draft.nodes.extend(pending)
                pending.clear()
                draft.nodes.append(node)
            last_row = _last_row(node)
        draft.nodes.extend(pending)
        draft.spans = _subtract(span, removed_lines)
        draft.segments = _subtract(extent, removed_bytes)


def _attached(pending: list[Node], node: Node, last_row: int) -> tuple[list[Node], list[Node]]:
    """Split comments/attributes before `node` into those that belong to it (a run ending on the
    line right above it, each on its own line) and the rest."""
    row = node.start_point[0]
    cut = len(pending)
    while cut > 0:
        candidate = pending[cut - 1]
        if _last_row(candidate) < row - 1 or candidate.start_point[0] <= last_row:
            break
        row = candidate.start_point[0]
        cut -= 1
    return pending[cut:], pending[:cut]


def _own_lines(first: Node, last: Node, body: Node, class_end: int) -> tuple[int, int]:
    """The lines a member takes from its class: its own, and the blank lines after it (so that
    adding or removing a method leaves the class's text alone). A first or last line shared with
    something else (a one-line class) stays the class's."""
    start, last_row = first.start_point[0], _last_row(last)
    before = first.prev_sibling or body.prev_sibling
    after = last.next_sibling
    while after is not None and after.type in _MEMBER_ENDS and after.start_point[0] == last_row:
        after = after.next_sibling  # the member's own `;` (JavaScript class fields)
    after = after or body.next_sibling
    if before is not None and before.end_point[0] == start:
        start += 1
    if after is None:
        end = class_end
    elif after.start_point[0] == last_row:
        end = last_row
    else:
        end = after.start_point[0]
    return start, max(start, end)


def _subtract(whole: tuple[int, int], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`whole` minus sorted, disjoint `holes`, as ranges."""
    pieces = []
    cursor, end = whole
    for start, stop in holes:
        if start > cursor:
            pieces.append((cursor, min(start, end)))
        cursor = max(cursor, stop)
    if cursor < end:
        pieces.append((cursor, end))
    return pieces


def _block(kind: UnitKind, name: str, nodes: list[Node]) -> _Draft:
    span = (nodes[0].start_point[0], _last_row(nodes[-1]) + 1)
    return _Draft(
        kind, name, [span], [(nodes[0].start_byte, nodes[-1].end_byte)], list(nodes), span
    )


def _live(draft: _Draft) -> bool:
    """Whether a block or class remainder holds anything to review (not only comments,
    attributes, `pass` or a docstring)."""
    return any(not _inert(node) for node in draft.nodes)


def _inert(node: Node) -> bool:
    if node.type in _INERT_KINDS:
        return True
    # A Python docstring: a statement that is nothing but a string.
    return (
        node.type == "expression_statement"
        and node.named_child_count == 1
        and node.named_children[0].type in ("string", "concatenated_string")
    )


def _assign_names(
    drafts: list[_Draft], query: Query, root: Node, data: bytes, own_names: set[int]
) -> None:
    """Give each identifier to the unit whose bytes hold it (one sweep over sorted ranges)."""
    segments = sorted(
        (start, end, index) for index, draft in enumerate(drafts) for start, end in draft.segments
    )
    if not segments:
        return
    starts = [segment[0] for segment in segments]
    captures = QueryCursor(query).captures(root)
    calls = {node.start_byte for node in captures.get("call", ())}
    for node in captures.get("id", ()):
        start = node.start_byte
        if start in own_names:
            continue
        at = bisect.bisect_right(starts, start) - 1
        if at < 0 or start >= segments[at][1]:
            continue
        draft = drafts[segments[at][2]]
        name = data[start : node.end_byte]
        draft.refs.add(name)
        if start in calls:
            draft.calls.add(name)


def _line_starts(data: bytes) -> list[int]:
    starts = [0]
    at = data.find(b"\n")
    while at != -1:
        starts.append(at + 1)
        at = data.find(b"\n", at + 1)
    starts.append(len(data))  # a sentinel: the end of the last line
    return starts


def _unit(language: str, draft: _Draft, data: bytes, starts: list[int]) -> Unit:
    last = len(starts) - 1
    text = b"".join(data[starts[min(a, last)] : starts[min(b, last)]] for a, b in draft.spans)
    return Unit(
        language=language,
        kind=draft.kind,
        name=draft.name,
        start_line=draft.lines[0],
        end_line=draft.lines[1],
        text=text.decode("utf-8", "replace"),
        refs=_decoded(draft.refs),
        calls=_decoded(draft.calls),
        digest=digest_text(text),
        spans=tuple(draft.spans),
    )


def _decoded(names: set[bytes]) -> tuple[str, ...]:
    return tuple(sorted(name.decode("utf-8", "replace") for name in names))
