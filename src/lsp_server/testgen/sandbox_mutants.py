"""Mutants of the target module, for the funnel's second way to keep a test: one that adds no
coverage is still worth keeping when it fails on a small change of the code that the suite
lets pass (it pins down behaviour the suite leaves loose).

Shipped into each job as ``_gantry/_gantry_mutants.py``; standard library only. The classic
operators, each a one-token change: a comparison flipped at its boundary or negated, an
arithmetic operator swapped, ``and``/``or`` swapped, an integer nudged by one, a boolean
constant negated; only on the lines the candidates run, so each mutant is one they could
notice.
"""

from __future__ import annotations

import ast
import random

_COMPARE = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_ARITHMETIC = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
}
_BOOLEAN = {ast.And: ast.Or, ast.Or: ast.And}
_SYMBOL = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in", ast.Add: "+",
    ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
    ast.And: "and", ast.Or: "or",
}  # fmt: skip


def _sites(tree: ast.AST, lines: set[int]):
    """(line, description, apply, undo) for every change on ``lines``."""
    for node in ast.walk(tree):
        line = getattr(node, "lineno", None)
        if line not in lines:
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in _COMPARE:
                    yield line, *_swap(node.ops, i, _COMPARE)
        elif isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            yield line, *_swap_attr(node, "op", _ARITHMETIC)
        elif isinstance(node, ast.BoolOp):
            yield line, *_swap_attr(node, "op", _BOOLEAN)
        elif isinstance(node, ast.Constant) and type(node.value) in (int, bool):
            yield line, *_constant(node)


def _swap(ops: list, i: int, table: dict):
    old = ops[i]
    new = table[type(old)]()
    what = f"{_SYMBOL[type(old)]} -> {_SYMBOL[type(new)]}"
    return what, lambda: ops.__setitem__(i, new), lambda: ops.__setitem__(i, old)


def _swap_attr(node: ast.AST, attr: str, table: dict):
    old = getattr(node, attr)
    new = table[type(old)]()
    what = f"{_SYMBOL[type(old)]} -> {_SYMBOL[type(new)]}"
    return what, lambda: setattr(node, attr, new), lambda: setattr(node, attr, old)


def _constant(node: ast.Constant):
    old = node.value
    new = (not old) if type(old) is bool else old + 1
    return (
        f"{old!r} -> {new!r}",
        lambda: setattr(node, "value", new),
        lambda: setattr(node, "value", old),
    )


def mutants(source: str, lines: set[int], limit: int, seed: int = 0) -> list[tuple[str, str]]:
    """Up to ``limit`` (description, mutated module source), spread over ``lines`` at random
    (seeded), in line order."""
    tree = ast.parse(source)
    sites = list(_sites(tree, lines))
    random.Random(seed).shuffle(sites)
    out = []
    for line, what, apply, undo in sorted(sites[:limit], key=lambda s: s[0]):
        apply()
        try:
            out.append((f"line {line}: {what}", ast.unparse(tree)))
        finally:
            undo()
    return out
