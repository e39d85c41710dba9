"""Seeded bugs and clean changes for the eval's dataset, made from a module's source.

A mutant is one small AST-guided edit that changes behaviour: a comparison flipped, a slice
bound or range argument off by one, two arguments swapped, a `not` removed, a constant changed.
A clean edit keeps behaviour: a local variable renamed, two independent assignments swapped, a
docstring added. Each is written as a change of the source text (never by unparsing the tree),
so everything else stays byte for byte and the change is one hunk. Whether a mutant is a bug
the package's tests can see, and a clean edit really clean, is build.py's to check.
"""

from __future__ import annotations

import ast
import io
import keyword
import re
import tokenize
from collections.abc import Iterator
from typing import Literal

import attrs

Kind = Literal["bug", "clean"]


@attrs.frozen
class Variant:
    path: str
    before: str
    after: str
    kind: Kind
    line: int
    """1-based line in `after`: the seeded bug's, or where the clean edit starts."""
    operator: str
    note: str


class _Source:
    """Source text addressed by the AST's positions (columns are UTF-8 byte offsets)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.data = text.encode("utf-8")
        self.starts = [0]
        for line in self.data.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.starts[node.lineno - 1] + node.col_offset
        return start, self.starts[node.end_lineno - 1] + node.end_col_offset

    def segment(self, start: int, end: int) -> str:
        return self.data[start:end].decode("utf-8")

    def replaced(self, edits: list[tuple[int, int, str]]) -> str:
        data = self.data
        for start, end, new in sorted(edits, reverse=True):
            data = data[:start] + new.encode("utf-8") + data[end:]
        return data.decode("utf-8")


_FLIPS: dict[type, tuple[str, str]] = {
    ast.Lt: ("<", ">="),
    ast.LtE: ("<=", ">"),
    ast.Gt: (">", "<="),
    ast.GtE: (">=", "<"),
    ast.Eq: ("==", "!="),
    ast.NotEq: ("!=", "=="),
    ast.In: ("in", "not in"),
    ast.NotIn: ("not in", "in"),
    ast.Is: ("is", "is not"),
    ast.IsNot: ("is not", "is"),
}
_SHIFTABLE = (ast.Name, ast.Attribute, ast.Call, ast.Subscript)


def mutants(path: str, text: str) -> Iterator[Variant]:
    """Every mutant of one module the operators make, in source order."""
    source = _Source(text)
    tree = ast.parse(text)
    bounds = _bounds(tree)
    skip = _docstrings(tree) | _in_fstrings(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        for operator, edit in _mutations(node, source, bounds):
            start, end, new = edit
            old = source.segment(start, end)
            after = source.replaced([edit])
            if after == text:
                continue
            line = text.encode("utf-8")[:start].count(b"\n") + 1
            note = f"{operator}: {_short(old)} -> {_short(new)}"
            yield Variant(path, text, after, "bug", line, operator, note)


def _mutations(
    node: ast.AST, source: _Source, bounds: set[int]
) -> Iterator[tuple[str, tuple[int, int, str]]]:
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _FLIPS:
        old, new = _FLIPS[type(node.ops[0])]
        start, end = source.span(node.left)[1], source.span(node.comparators[0])[0]
        between = source.segment(start, end)
        if " ".join(between.split()) == old:  # no parentheses or comments in the way
            flipped = between.replace(between.strip(), new)
            yield "comparison flip", (start, end, flipped)
    elif id(node) in bounds:
        start, end = source.span(node)
        text = source.segment(start, end)
        if _int(node) and text == str(node.value):
            yield "off by one", (start, end, str(node.value + 1))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and _int(node.operand):
            yield "off by one", (start, end, f"-{node.operand.value + 1}")
        elif isinstance(node, _SHIFTABLE) or (
            isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub))
        ):
            yield "off by one", (start, end, f"{text} + 1")
    elif isinstance(node, ast.Call) and len(node.args) >= 2:
        first, second = node.args[0], node.args[1]
        if not any(isinstance(a, ast.Starred) for a in (first, second)):
            (a_start, a_end), (b_start, b_end) = source.span(first), source.span(second)
            a, b = source.segment(a_start, a_end), source.segment(b_start, b_end)
            between = source.segment(a_end, b_start)
            if a != b and between.strip() == ",":
                yield "swapped arguments", (a_start, b_end, f"{b}{between}{a}")
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        start, end = source.span(node)
        text = source.segment(start, end)
        if text.startswith("not"):  # keeps the operand's own parentheses, and so its meaning
            yield "removed not", (start, end, text[3:].lstrip())
    elif isinstance(node, ast.Constant):
        start, end = source.span(node)
        if source.segment(start, end) != str(node.value):
            return  # 0x10, 1_000, a string: not a literal this operator rewrites
        if isinstance(node.value, bool):
            yield "changed constant", (start, end, str(not node.value))
        elif _int(node):
            yield "changed constant", (start, end, str(node.value + 1))


def _int(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int)
        and not isinstance(node.value, bool)
    )


def _bounds(tree: ast.AST) -> set[int]:
    """Slice bounds and range() arguments: where a value is off by one."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Slice):
            found.update(id(b) for b in (node.lower, node.upper) if b is not None)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "range"
            and node.args
        ):
            found.add(id(node.args[-1] if len(node.args) < 3 else node.args[1]))
    return found


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            found.add(id(first.value))
    return found


def _in_fstrings(tree: ast.AST) -> set[int]:
    """Nodes inside f-strings, whose positions Python 3.11 does not always give right."""
    return {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for inner in ast.walk(node)
    }


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_SCOPES = (*_FUNCTIONS, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp, ast.DictComp)
_SCOPES += (ast.GeneratorExp,)
_PLAIN = (ast.Constant, ast.Name, ast.Attribute, ast.Tuple, ast.List, ast.Set, ast.Dict)


def clean_edits(path: str, text: str) -> Iterator[Variant]:
    """Behaviour-preserving edits of one module, by kind in turn (renames, reorders,
    docstrings), so that a capped dataset still has each kind."""
    source = _Source(text)
    tree = ast.parse(text)
    functions = [n for n in ast.walk(tree) if isinstance(n, _FUNCTIONS)]
    functions.sort(key=lambda f: f.lineno)
    words = set(re.findall(r"\w+", text))
    kinds = [
        list(_renames(functions, source, words)),
        list(_reorders(functions, source)),
        list(_docstrings_added(functions, source)),
    ]
    for round_ in range(max(map(len, kinds), default=0)):
        for variants in kinds:
            if round_ < len(variants):
                operator, line, note, after = variants[round_]
                yield Variant(path, text, after, "clean", line, operator, note)


def _renames(
    functions: list[ast.AST], source: _Source, words: set[str]
) -> Iterator[tuple[str, int, str, str]]:
    for function in functions:
        names = _own_names(function)
        stored = sorted({n.id for n in names if isinstance(n.ctx, ast.Store)})
        parameters = {a.arg for a in ast.walk(function.args) if isinstance(a, ast.arg)}
        declared = {
            name
            for node in ast.walk(function)
            if isinstance(node, (ast.Global, ast.Nonlocal))
            for name in node.names
        }
        for name in stored:
            if name in parameters or name in declared or name.startswith("_"):
                continue
            uses = [n for n in names if n.id == name]
            if _nested_use(function, name) or _tokens(source, function, name) != len(uses):
                continue  # read in a closure, or named where the tree shows no Name node
            new = f"{name}_value"
            if new in words or keyword.iskeyword(new):
                continue
            edits = [(*source.span(n), new) for n in uses]
            line = min(n.lineno for n in uses)
            yield "rename local", line, f"rename local {name} -> {new}", source.replaced(edits)
            break  # one rename a function


def _own_names(function: ast.AST) -> list[ast.Name]:
    """Name nodes in `function`'s body, in its own scope (not in nested functions, classes,
    comprehensions); not in its signature, whose names belong to the enclosing scope."""
    found: list[ast.Name] = []
    stack = list(function.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name):
            found.append(node)
        if not isinstance(node, _SCOPES):
            stack.extend(ast.iter_child_nodes(node))
    return found


def _nested_use(function: ast.AST, name: str) -> bool:
    return any(
        isinstance(n, ast.Name) and n.id == name
        for node in ast.walk(function)
        if node is not function and isinstance(node, _SCOPES)
        for n in ast.walk(node)
    )


def _tokens(source: _Source, function: ast.AST, name: str) -> int:
    """NAME tokens spelling `name` in the function's text: an attribute, keyword argument,
    import alias or `except ... as` of that name counts here and not as a Name node."""
    text = source.segment(*source.span(function))
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return -1
    return sum(t.type == tokenize.NAME and t.string == name for t in tokens)


def _reorders(functions: list[ast.AST], source: _Source) -> Iterator[tuple[str, int, str, str]]:
    lines = source.text.splitlines(keepends=True)
    for function in functions:
        for first, second in zip(function.body, function.body[1:], strict=False):
            if not (_simple_assignment(first, source) and _simple_assignment(second, source)):
                continue
            if first.end_lineno >= second.lineno:
                continue
            a, b = first.targets[0].id, second.targets[0].id
            if a == b or _reads(first.value, b) or _reads(second.value, a):
                continue
            i, j = first.lineno - 1, second.lineno - 1
            swapped = [*lines[:i], lines[j], lines[i], *lines[j + 1 :]]
            yield (
                "reorder statements",
                first.lineno,
                f"swap {a} = ... and {b} = ...",
                "".join(swapped),
            )
            break


def _simple_assignment(node: ast.AST, source: _Source) -> bool:
    """`name = value` alone on one line, where the value has no effect and cannot fail."""
    return (
        _alone(node, source)
        and isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and node.lineno == node.end_lineno
        and all(isinstance(n, (*_PLAIN, ast.Load, ast.expr_context)) for n in ast.walk(node.value))
    )


def _reads(value: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(value))


def _docstrings_added(
    functions: list[ast.AST], source: _Source
) -> Iterator[tuple[str, int, str, str]]:
    lines = source.text.splitlines(keepends=True)
    for function in functions:
        body = function.body
        first = body[0]
        if not _alone(first, source) or (
            isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
        ):
            continue  # a body on the header's line, or a docstring already
        line = lines[first.lineno - 1]
        indent = line[: len(line) - len(line.lstrip())]
        words = function.name.strip("_").replace("_", " ") or function.name
        doc = f'{indent}"""{words[:1].upper()}{words[1:]}."""\n'
        after = "".join([*lines[: first.lineno - 1], doc, *lines[first.lineno - 1 :]])
        yield "add docstring", first.lineno, f"docstring for {function.name}", after


def _alone(node: ast.stmt, source: _Source) -> bool:
    """The statement starts its line (only indentation before it) and ends it."""
    start, end = source.span(node)
    line_start = source.starts[node.lineno - 1]
    line_end = source.starts[node.end_lineno]
    return (
        not source.data[line_start:start].strip()
        and not source.data[end:line_end].split(b"#", 1)[0].strip()
    )
