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
import re
from collections import Counter
from collections.abc import Sequence

from tree_sitter import Node, Point, Query, QueryCursor, Tree

from lsp_server.analysis.languages import grammar, parser
from lsp_server.review.findings import Finding, split_lines
from lsp_server.review.ruff_engine import SYNTAX_ERROR

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
_SYNTAX_ERRORS = frozenset({SYNTAX_ERROR, "syntax-error", "E999"})
"""Findings that say the file does not parse: its scopes are those of tree-sitter's recovery."""
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


# ---- Python scopes without a parse ------------------------------------------------------------
#
# Tree-sitter's Python tree is costly to build (most of `gantry check --format json`), and a
# finding's scopes need only the rows where each `def` and `class` starts and ends. The scan
# finds them from a skeleton of the text (strings and comments blanked, rows that continue a
# string, a backslash or brackets marked) with a few passes of C-speed string methods and
# regular expressions, reproducing tree-sitter's rows, down to where its scanner ends a block
# among trailing comments. Where the skeleton could differ from the tree (tabs or form feeds in
# indentation, a lone CR, f-strings nesting quotes, a row inside brackets dedented below its
# statement where no closing bracket may come next, unbalanced brackets or quotes), it declines
# and the tree is parsed as before; so do files with a syntax error, whose scopes are those of
# tree-sitter's error recovery. Checked against the tree on every line of 13,348 real files.

_TOKEN = re.compile(
    r"(#[^\r\n]*"
    r'|"""[^"\\]*(?:(?:\\(?:\r\n|.)|"(?!""))[^"\\]*)*"""'
    r"|'''[^'\\]*(?:(?:\\(?:\r\n|.)|'(?!''))[^'\\]*)*'''"
    r'|"[^"\\\r\n]*(?:\\(?:\r\n|.)[^"\\\r\n]*)*"'
    r"|'[^'\\\r\n]*(?:\\(?:\r\n|.)[^'\\\r\n]*)*')",
    re.DOTALL,
)
"""A comment or a string (its prefix letters stay in the code before it)."""
_FORMAT_PREFIX = re.compile(r"(?:^|\W)(?=[rR]?[fFtT]|[fFtT][rR])[rRfFtT]{1,2}\Z")
"""An f- or t-string's prefix, at the end of (the last three characters of) the code before."""
_CONTINUED = "\n\x01"  # a row that continues a string, a backslash or brackets starts with \x01
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"()[]{}\n")))
_CLOSES = {ord(")"): ord("("), ord("]"): ord("["), ord("}"): ord("{")}
_LONE_CR = re.compile(r"\r(?!\n)")  # Python's (and ruff's) line break, not a tree-sitter row
_TAB_INDENT = re.compile(r"\n *\t[ \t]*[^ \t\r\n\x0c]")  # tree-sitter counts a tab as 8 columns
_FORM_FEED_INDENT = re.compile(r"\n[ \t]*\x0c[ \t\x0c]*[^ \t\r\n\x0c]")  # it resets the column
_HELD = re.compile(rb"[^\n]+")
_DEF = re.compile(r"def\b(?:[ \t]+([^\W\d]\w*))?")
_CLASS = re.compile(r"class\b(?:[ \t]+([^\W\d]\w*))?")
_CODE_ROW = re.compile(r"\n( *)[^ \t\r\n\x0c#\x01]")
_BLANK = re.compile(r"[ \t\r\x0c]*\Z")
_COMMENT = re.compile(r"( *)#\r?\Z")


class _Unsure(Exception):
    pass


@functools.lru_cache(maxsize=64)
def _dedented(columns: int) -> re.Pattern:
    """A code row (not continued, not a comment) indented by at most `columns`."""
    return re.compile(rf"\n( {{0,{columns}}})[^ \t\r\n\x0c#\x01]")


def _skeleton(text: str) -> list[str]:
    """The rows of `text` with strings blanked to `S`, comments to `#`, and rows that do not
    start a statement (inside a string or brackets, after a backslash) starting with \\x01."""
    if "\x01" in text or text.startswith("\ufeff") or ("\r" in text and _LONE_CR.search(text)):
        raise _Unsure
    parts = _TOKEN.split(text)
    tokens = parts[1::2]
    for i in [i for i, token in enumerate(tokens) if "{" in token]:
        # an f-string (or t-string) whose fields hold quotes of its own kind (PEP 701) was cut
        # short above; it is whole when its braces balance
        token = tokens[i]
        if token[0] != "#" and _FORMAT_PREFIX.search(parts[2 * i][-3:]):
            fields = token.replace("{{", "").replace("}}", "")
            if fields.count("{") != fields.count("}"):
                raise _Unsure
    parts[1::2] = [
        "#" if token[0] == "#" else "S" + _CONTINUED * token.count("\n") for token in tokens
    ]
    skeleton = "".join(parts)
    if (
        "'" in skeleton
        or '"' in skeleton
        or ("\t" in skeleton and _TAB_INDENT.search("\n" + skeleton))
        or ("\x0c" in skeleton and _FORM_FEED_INDENT.search("\n" + skeleton))
    ):
        raise _Unsure
    if "\\" in skeleton:
        at = skeleton.find("\\")
        while at >= 0:  # a header continued by a backslash: rows the patterns do not read
            lead = skeleton[skeleton.rfind("\n", 0, at) + 1 : at].lstrip(" ")
            if lead.startswith(("def", "class", "async")):
                raise _Unsure
            at = skeleton.find("\\", at + 1)
        skeleton = skeleton.replace("\\\r\n", "\r" + _CONTINUED).replace("\\\n", _CONTINUED)
    rows = skeleton.split("\n")
    # Brackets: balanced pairs within a row vanish, what is left spans rows.
    brackets = skeleton.encode("utf-8", "surrogatepass").translate(None, _NOT_BRACKETS)
    size = len(brackets) + 1
    while len(brackets) < size:
        size = len(brackets)
        brackets = brackets.replace(b"()", b"").replace(b"[]", b"").replace(b"{}", b"")
    if brackets.strip(b"\n"):
        opened: list[tuple[int, int]] = []
        row, last = 0, 0
        for held in _HELD.finditer(brackets):  # the few rows where brackets are left
            row += brackets.count(b"\n", last, held.start())
            last = held.start()
            for char in held.group():
                if char not in _CLOSES:
                    opened.append((char, row))
                    continue
                if not opened or opened[-1][0] != _CLOSES[char]:
                    raise _Unsure
                first = opened.pop()[1]
                if not opened and row > first:
                    _mark_continued(rows, first, row)
        if opened:
            raise _Unsure
    return rows


def _mark_continued(rows: list[str], first: int, last: int) -> None:
    """Mark rows first+1..last as continuing the statement open on row `first`. Tree-sitter's
    scanner ends the block inside the brackets at a row indented less than the statement,
    unless a closing bracket may come next (after an opening bracket or a comma, or when it
    does): anything else is declined."""
    head = first
    while rows[head].startswith("\x01"):
        head -= 1
    indent = len(rows[head]) - len(rows[head].lstrip(" "))
    previous = rows[first]
    for row in range(first + 1, last + 1):
        text = rows[row]
        if text.startswith("\x01"):  # a string's own rows
            previous = text
            continue
        if not (_BLANK.match(text) or _COMMENT.match(text)):
            code = text.lstrip(" ")
            if (
                len(text) - len(code) < indent
                and not code.startswith((")", "]", "}"))
                and not previous.rstrip("# \r").endswith(("(", "{", ","))
            ):
                raise _Unsure
            previous = text
        rows[row] = "\x01" + text


def _headers(skeleton: str) -> list[tuple[int, str | None]]:
    """(position of `def` or `class`, the name after it) for each keyword in the skeleton, in
    order: literal patterns, which the regex engine searches for fast."""
    found = [(m.start(), m.group(1)) for m in _DEF.finditer(skeleton)]
    found += [(m.start(), m.group(1)) for m in _CLASS.finditer(skeleton)]
    found.sort()
    return found


class _PythonScopes:
    """The scopes of valid Python source, as tree-sitter's rows give them; `scan` returns None
    where it cannot be sure of agreeing with the tree. Headers are found at once; where a scope
    ends, and which one encloses it, only when a finding asks."""

    def __init__(self, rows: list[str], skeleton: str) -> None:
        self._rows, self._skeleton = rows, skeleton
        starts: list[int] = []
        indents: list[int] = []
        names: list[str] = []
        at: list[int] = []
        row, last = -1, 0
        for position, name in _headers(skeleton):
            line_start = skeleton.rfind("\n", 0, position)
            lead = skeleton[line_start + 1 : position]
            indent = len(lead) - len(lead.lstrip(" "))
            if lead[indent:] not in ("", "async ") or name is None:
                if lead[indent:].rstrip(" \t") in ("", "async"):
                    raise _Unsure  # a header the patterns do not read (async and a tab, ...)
                continue  # `def` or `class` inside a statement's row: not a header
            row += skeleton.count("\n", last, line_start + 1)
            last = line_start + 1
            starts.append(row)
            indents.append(indent)
            names.append(name)
            at.append(line_start)
        # the nearest header before each that is indented less: its parent, or closed before it
        outer: list[int] = []
        stack: list[int] = []
        for i, indent in enumerate(indents):
            while stack and indents[stack[-1]] >= indent:
                stack.pop()
            outer.append(stack[-1] if stack else -1)
            stack.append(i)
        self._starts, self._indents, self._names, self._at, self._outer = (
            starts,
            indents,
            names,
            at,
            outer,
        )
        self._ends: dict[int, int] = {}
        self._qualified: dict[int, str] = {}

    def at(self, line: int) -> str:
        """The qualified name of the scopes around `line`."""
        i = bisect.bisect_right(self._starts, line) - 1
        while i >= 0 and self._end(i) < line:
            i = self._parent(i)
        return self._name(i) if i >= 0 else ""

    def _parent(self, i: int) -> int:
        """The scope around header i: one indented less, still open on its row (a scope before
        i that encloses it encloses every header between them, so each step skips those)."""
        j = self._outer[i]
        while j >= 0 and self._end(j) < self._starts[i]:
            j = self._outer[j]
        return j

    def _name(self, i: int) -> str:
        name = self._qualified.get(i)
        if name is None:
            parent = self._parent(i)
            name = self._names[i] if parent < 0 else f"{self._name(parent)}.{self._names[i]}"
            self._qualified[i] = name
        return name

    def _end(self, i: int) -> int:
        """The last row of header i's scope, as tree-sitter ends it."""
        end = self._ends.get(i)
        if end is not None:
            return end
        rows, indent = self._rows, self._indents[i]
        body, body_indent, body_at = self._next_code(_CODE_ROW, self._starts[i], self._at[i])
        if body_indent <= indent:  # the body is on the header's row(s), or missing
            end = _statement_end(rows, body)
        else:
            close, _, _ = self._next_code(_dedented(indent), body, body_at)
            end = _statement_end(rows, close)
            # tree-sitter's scanner keeps the comments after a block in it until one is
            # indented less than the block
            for comment in range(end + 1, close):
                found = _COMMENT.match(rows[comment])
                if found is None:
                    continue
                if len(found.group(1)) < body_indent:
                    break
                end = comment
        if end < self._starts[i]:
            raise _Unsure
        self._ends[i] = end
        return end

    def _next_code(self, pattern: re.Pattern, row: int, pos: int) -> tuple[int, int, int]:
        """The first row after `row` (whose newline is at `pos`) that starts a statement and
        that `pattern` matches: (that row, its indentation, its newline), or (number of rows,
        0, -1) when there is none."""
        skeleton = self._skeleton
        start = skeleton.find("\n", pos + 1)
        found = pattern.search(skeleton, start) if start >= 0 else None
        if found is None:
            return len(self._rows), 0, -1
        row += skeleton.count("\n", start, found.start() + 1)
        return row, len(found.group(1)), found.start()

    @classmethod
    def scan(cls, text: str, lines: Sequence[int]) -> list[str] | None:
        """The qualified scope names at `lines`, or None where the scan is unsure."""
        try:
            rows = _skeleton(text)
            scopes = cls(rows, "\n" + "\n".join(rows))  # the newline before row r is the (r+1)th
            return [scopes.at(line) for line in lines]
        except _Unsure:
            return None


def _statement_end(rows: list[str], before: int) -> int:
    """The last row of code (or of a string or brackets it holds) before row `before`."""
    row = before - 1
    while row >= 0 and (_BLANK.match(rows[row]) or _COMMENT.match(rows[row])):
        row -= 1
    return row


def fingerprint_findings(
    findings: Sequence[Finding],
    text: str,
    language: str | None,
    trees: IncrementalParser | None = None,
    *,
    lines: Sequence[str] | None = None,
    scan: bool = True,
) -> list[Finding]:
    """The findings with their fingerprints set. `trees`, the document's parser from its last
    review, makes a parse incremental; the fingerprints are the same without it. `lines` are
    the text's (`split_lines`), when the caller has them. Python is scanned rather than parsed
    where the scan is sure to agree with the tree; `scan=False` always parses (a notebook's
    cells, which may hold IPython syntax)."""
    if not findings:
        return []
    if lines is None:
        lines = split_lines(text)  # ruff's and LSP's lines, which the findings point into
    scopes = None
    if language == "python" and scan and not any(f.rule in _SYNTAX_ERRORS for f in findings):
        scopes = _PythonScopes.scan(text, [f.start[0] for f in findings])
    if scopes is None and language in _SCOPES:
        tree = (trees or IncrementalParser()).parse(language, text.encode("utf-8", "surrogatepass"))
        scope_at = Scopes(tree, language).at
        scopes = [scope_at(f.start[0]) for f in findings]
    seen: Counter[tuple[str, str, str]] = Counter()
    out = []
    for i, finding in enumerate(findings):
        first, last = finding.start[0], min(finding.end[0], finding.start[0] + _MAX_LINES - 1)
        flagged = _normalise(" ".join(lines[first : last + 1]))
        scope = scopes[i] if scopes is not None else ""
        key = (finding.rule, scope, flagged)
        rank = seen[key]
        seen[key] += 1
        digest = hashlib.sha256("\0".join((*key, str(rank))).encode()).hexdigest()[:20]
        out.append(finding.with_fingerprint(digest))
    return out
