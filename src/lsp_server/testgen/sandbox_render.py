"""Tests from the search's finds (sandbox_explore), written *inside* the sandbox.

Shipped into each job as ``_gantry/_gantry_render.py``; standard library only. Each find
becomes a test that makes the same call and asserts what the code returns today (values, the
public attributes of objects, the exception raised), observed twice and asserted only where
both agree.

What it writes is code a person will run outside any sandbox, and the code under test chose
the values it observed. So nothing it renders comes from the code's own ``repr``: values are
asserted only when their type is exactly a builtin literal type and the rendered text parses
back (``ast.literal_eval``) to an equal value; attribute, type and member names only when they
are identifiers.
"""

from __future__ import annotations

import ast
import builtins
import enum
import inspect
import keyword
import math
import re
import sys

from _gantry_inputs import LITERAL_TYPES, Construct, Member

MAX_ASSERTS = 20
LITERAL_REPR_MAX = 240
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


class Imports:
    """``from module import name`` lines, refusing a name already taken by another module."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def name_of(self, thing) -> str | None:
        module = getattr(thing, "__module__", None)
        qualname = getattr(thing, "__qualname__", None)
        if not isinstance(module, str) or not isinstance(qualname, str):
            return None
        if module == "__main__" or module.startswith("_gantry"):  # this search's own code
            return None
        if module == "builtins":
            return qualname if getattr(builtins, qualname, None) is thing else None
        head = qualname.split(".")[0]
        if not all(_identifier(p) for p in qualname.split(".")):
            return None
        if not all(_identifier(p) for p in module.split(".")):
            return None
        try:  # only what can be imported by that name is named
            found = sys.modules[module]
            for part in qualname.split("."):
                found = getattr(found, part)
        except (KeyError, AttributeError):
            return None
        if found is not thing or self.names.get(head, module) != module:
            return None
        self.names[head] = module
        return qualname

    def lines(self) -> list[str]:
        return [f"from {m} import {n}" for n, m in sorted(self.names.items(), key=lambda x: x[1])]


def _identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def _literal(value: object) -> str | None:
    """Source for ``value`` if it is made of builtin literals only and reads back equal."""

    def plain(v, depth=0) -> bool:
        if depth > 4:
            return False
        if type(v) in LITERAL_TYPES:
            return not (type(v) is float and not math.isfinite(v))
        if type(v) in (list, tuple):
            return all(plain(x, depth + 1) for x in v)
        if type(v) is dict:
            return all(plain(k, depth + 1) and plain(x, depth + 1) for k, x in v.items())
        return False

    if not plain(value):
        return None
    text = repr(value)
    if len(text) > LITERAL_REPR_MAX or _ADDRESS.search(text):
        return None
    try:
        return text if ast.literal_eval(text) == value else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def observe(a, b, expr: str, imports: Imports, out: list[str], depth: int = 0) -> None:
    """Assertions on ``expr`` that hold for both ``a`` and ``b``, what two calls returned:
    a value is asserted whole where both agree, else as far down as they do."""
    if len(out) >= MAX_ASSERTS:
        return
    if type(a) is not type(b):
        return
    if a is None or type(a) is bool:
        if a is b:
            out.append(f"assert {expr} is {a!r}")
        return
    text = _literal(a)
    if text is not None and text == _literal(b):
        out.append(f"assert {expr} == {text}")
        return
    if isinstance(a, enum.Enum):
        owner = imports.name_of(type(a))
        if a is b and owner is not None and _identifier(a.name):
            out.append(f"assert {expr} == {owner}.{a.name}")
        return
    if depth >= 3:
        return
    if type(a) in (list, tuple):
        if len(a) == len(b):
            out.append(f"assert len({expr}) == {len(a)}")
            for i in range(min(len(a), 3)):
                observe(a[i], b[i], f"{expr}[{i}]", imports, out, depth + 1)
        return
    if type(a) is dict:
        keys = [k for k in a if type(k) in (str, int) and _literal(k) is not None and k in b]
        if a.keys() == b.keys():
            out.append(f"assert len({expr}) == {len(a)}")
        for key in keys[:4]:
            observe(a[key], b[key], f"{expr}[{key!r}]", imports, out, depth + 1)
        return
    if type(a) in LITERAL_TYPES:  # a long string: its length
        if type(a) is str and len(a) == len(b):
            out.append(f"assert len({expr}) == {len(a)}")
        return
    if inspect.isroutine(a) or inspect.ismodule(a) or inspect.isclass(a):
        return
    kind = imports.name_of(type(a))
    if kind is not None:  # a type that cannot be imported by its name is not named
        out.append(f"assert isinstance({expr}, {kind})")
    observe_fields(a, b, expr, imports, out, depth)


def observe_fields(a, b, expr: str, imports: Imports, out: list[str], depth: int = 0) -> None:
    """Assertions on the public attributes of ``expr`` that hold for both objects."""
    fields, others = getattr(a, "__dict__", None), getattr(b, "__dict__", None)
    if type(fields) is dict and type(others) is dict:
        for name in sorted(n for n in fields if type(n) is str and n in others):
            if not name.startswith("_") and _identifier(name):
                observe(fields[name], others[name], f"{expr}.{name}", imports, out, depth + 1)


def render(entry, number: int, imports: Imports, call) -> str | None:
    """The test for ``entry``, or None when what it does cannot be asserted the same twice."""
    callee = entry.callee
    receivers: list = []
    (outcome, value), again = call(entry, None, receivers), call(entry, None, receivers)
    if outcome in ("timeout", "broken") or outcome != again[0]:
        return None
    asserts: list[str] = []
    if outcome == "raise" and value is not again[1]:
        return None
    if outcome == "return":
        observe(value, again[1], "result", imports, asserts)
        if len(receivers) == 2:  # what a method did to its object
            observe_fields(*receivers, "obj", imports, asserts)
    raised = value
    root = callee.owner or (callee.function if inspect.isclass(callee.function) else None)
    head = imports.name_of(root) if root is not None else imports.name_of(callee.function)
    if head is None:
        return None
    args = []
    for value in entry.args:
        text = _source(value, imports)
        if text is None:
            return None
        args.append(text)
    body = []
    if callee.owner is not None:
        receiver = [_source(v, imports) for v in entry.receiver]
        if None in receiver:
            return None
        body.append(f"obj = {head}({', '.join(receiver)})")
        expr = f"obj.{callee.method}({', '.join(args)})"
    else:
        name = head if root is None else f"{head}{callee.label[len(root.__name__) :]}"
        expr = f"{name}({', '.join(args)})"
    if outcome == "raise":
        exc = imports.name_of(raised)
        if exc is None:
            return None
        body += [f"with pytest.raises({exc}):", f"    {expr}"]
    else:
        if not asserts:
            return None  # a call whose result says nothing checkable tests nothing
        body += [f"result = {expr}", *asserts]
    slug = re.sub(r"\W+", "_", callee.label).lower()
    return f"def test_{slug}_{number}():\n" + "".join(f"    {b}\n" for b in body)


def _source(value, imports: Imports) -> str | None:
    if isinstance(value, Construct):
        cls = imports.name_of(value.cls)
        parts = [_source(a, imports) for a in value.args]
        return None if cls is None or None in parts else f"{cls}({', '.join(parts)})"
    if isinstance(value, Member):
        owner = imports.name_of(type(value.member))
        return f"{owner}.{value.member.name}" if owner and _identifier(value.member.name) else None
    if type(value) is dict:
        pairs = [(_source(k, imports), _source(v, imports)) for k, v in value.items()]
        if any(k is None or v is None for k, v in pairs):
            return None
        return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
    if type(value) in (list, tuple):
        parts = [_source(v, imports) for v in value]
        if None in parts:
            return None
        if type(value) is list:
            return f"[{', '.join(parts)}]"
        return f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"
    if type(value) in LITERAL_TYPES:
        text = repr(value)
        return text if ast.literal_eval(text) == value else None
    return None


def passes(test: str, header: str, guarded) -> bool:
    """Whether the rendered test passes here, in a namespace of its own."""
    namespace: dict = {}
    name = test.split("(", 1)[0][len("def ") :]
    try:
        exec(compile(header + "\n" + test, "<explored>", "exec"), namespace)  # noqa: S102
    except Exception:
        return False
    return guarded(namespace[name])[0] == "return"
