"""Inputs for the coverage-guided search (sandbox_explore), run *inside* the sandbox.

Shipped into each job as ``_gantry/_gantry_inputs.py``; standard library only. The pools are
the project's own literals (every string and number in its Python files: the section titles a
parser looks for, the names a dispatcher switches on, the examples its docstrings and tests
hold), the target module's first. Values are built from annotations and defaults, and mutated
as a fuzzer would (splicing in lines of other literals, dropping, repeating or indenting lines,
nudging numbers); every value is one that renders as source: a builtin literal, a list or tuple
of them, an enum member, or an instance made from such arguments.
"""

from __future__ import annotations

import ast
import enum
import inspect
import math
import os
import random
import re
import types
import typing

MAX_STRING = 800
MAX_LINES = 24
LITERAL_TYPES = (str, int, float, bool, bytes, type(None))
_SKIP_DIRS = {"_gantry", "__pycache__", "node_modules", "build", "dist", "venv", "env"}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\S")


# -- the project's literals ---------------------------------------------------------------


class Pools:
    """What inputs are built from: the target module's literals first, then the project's."""

    def __init__(self, root: str, target_file: str) -> None:
        own, other = _literals(target_file), {}
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
            for name in sorted(files):
                path = os.path.join(folder, name)
                if name.endswith(".py") and os.path.realpath(path) != target_file:
                    for kind, values in _literals(path).items():
                        other.setdefault(kind, set()).update(values)
        self.strings = sorted(own.get(str, set())) or [""]
        self.other_strings = sorted(other.get(str, set()) - set(self.strings)) or self.strings
        self.ints = sorted(own.get(int, set()) | other.get(int, set()) | {0, 1, -1, 2, 10})
        self.floats = sorted(own.get(float, set()) | {0.0, 1.5, -2.25})
        self.own_lines = _lines(self.strings)
        self.lines = _lines(self.strings + self.other_strings)
        self.words = sorted({w for t in self.strings for w in _WORD.findall(t) if len(w) < 40})
        self.words = self.words or ["x"]

    def string(self, rng: random.Random) -> str:
        pool = self.strings if rng.random() < 0.6 else self.other_strings
        return rng.choice(pool)

    def line(self, rng: random.Random) -> str:
        # The module's own first: its keys and keywords are what its branches compare with.
        return rng.choice(self.own_lines if rng.random() < 0.7 else self.lines)


def _lines(texts: list[str]) -> list[str]:
    return sorted({ln.rstrip() for t in texts for ln in t.splitlines() if len(ln) < 120}) or [""]


def _literals(path: str) -> dict[type, set]:
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return {}
    found: dict[type, set] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and type(node.value) in (str, int, float):
            value = node.value
            if isinstance(value, str) and len(value) > MAX_STRING:
                value = "\n".join(value.splitlines()[:MAX_LINES])[:MAX_STRING]
            if isinstance(value, float) and not math.isfinite(value):
                continue
            if isinstance(value, int) and abs(value) > 2**31:
                continue
            found.setdefault(type(value), set()).add(value)
    return found


# -- inputs: values that render as source -------------------------------------------------


class Construct:
    """An instance of a class, made afresh for every call from the arguments it was given."""

    def __init__(self, cls: type, args: list) -> None:
        self.cls, self.args = cls, args

    def make(self) -> object:
        return self.cls(*[materialize(a) for a in self.args])


class Member:
    def __init__(self, member: enum.Enum) -> None:
        self.member = member


def materialize(value: object) -> object:
    if isinstance(value, Construct):
        return value.make()
    if isinstance(value, Member):
        return value.member
    if type(value) in (list, tuple):
        return type(value)(materialize(v) for v in value)
    if type(value) is dict:
        return {materialize(k): materialize(v) for k, v in value.items()}
    return value


class Inputs:
    """Builds and mutates argument values from annotations, defaults and the pools."""

    def __init__(self, pools: Pools, rng: random.Random) -> None:
        self.pools, self.rng = pools, rng

    def fresh(self, annotation: object, default: object = inspect.Parameter.empty, depth=0):
        rng = self.rng
        if type(default) in LITERAL_TYPES and rng.random() < 0.3:
            return default
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin in (typing.Union, types.UnionType):
            return self.fresh(rng.choice(args), depth=depth)
        if origin is typing.Literal:
            return rng.choice([a for a in args if type(a) in LITERAL_TYPES] or [None])
        if origin is tuple and args and args[-1] is not Ellipsis:  # tuple[str, int]
            return tuple(self.fresh(a, depth=depth + 1) for a in args)
        if origin in (list, tuple, set, frozenset) or _is_sequence(origin):
            item = args[0] if args else object
            items = [self.fresh(item, depth=depth + 1) for _ in range(rng.randrange(0, 4))]
            return tuple(items) if origin is tuple else items
        if origin is dict or _is_mapping(origin) or annotation is dict:
            key, value = args if len(args) == 2 else (str, object)
            key = key if key in (str, int) else str  # what a key can be made of here
            return {
                self.fresh(key, depth=depth + 1): self.fresh(value, depth=depth + 1)
                for _ in range(rng.randrange(0, 4))
            }
        unannotated = annotation is object  # (parameters() fills in object): the default tells
        if annotation in (list, tuple, set) or unannotated and type(default) in (list, tuple, dict):
            shape = annotation if annotation in (list, tuple, set) else type(default)
            return self.fresh(shape[object] if shape is not dict else dict, depth=depth)
        if annotation is str:
            return self.pools.string(rng)
        if annotation is bool:
            return rng.random() < 0.5
        if annotation is int:
            return rng.choice(self.pools.ints)
        if annotation is float:
            return rng.choice(self.pools.floats)
        if annotation is bytes:
            return self.pools.string(rng).encode("utf-8", "replace")
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            members = list(annotation)
            return Member(rng.choice(members)) if members else None
        if isinstance(annotation, type) and _user_class(annotation) and depth < 2:
            return self.construct(annotation, depth + 1)
        if type(default) in LITERAL_TYPES and default is not None:
            return self.fresh(type(default), depth=depth)
        roll = rng.random()
        if roll < 0.6:
            return self.pools.string(rng)
        if roll < 0.8:
            return rng.choice(self.pools.ints)
        return None if roll < 0.9 else rng.random() < 0.5

    def construct(self, cls: type, depth: int) -> Construct | None:
        params = parameters(cls)
        if params is None:
            return None
        return Construct(cls, [self.fresh(p.annotation, p.default, depth) for p in params])

    def mutate(self, value: object, annotation: object) -> object:
        rng = self.rng
        if rng.random() < 0.1:
            return self.fresh(annotation)
        if isinstance(value, str):
            return self.mutate_string(value)
        if isinstance(value, bool):
            return not value
        if isinstance(value, int):
            return rng.choice(
                [value + 1, value - 1, -value, value * 2, rng.choice(self.pools.ints)]
            )
        if isinstance(value, float):
            return rng.choice([value + 1.0, value / 2, -value, rng.choice(self.pools.floats)])
        if isinstance(value, bytes):
            return self.mutate_string(value.decode("utf-8", "replace")).encode("utf-8")
        if isinstance(value, tuple) and value:
            items, args = list(value), typing.get_args(annotation)
            i = rng.randrange(len(items))
            fixed = args and args[-1] is not Ellipsis and len(args) == len(items)
            items[i] = self.mutate(items[i], args[i] if fixed else (args or (object,))[0])
            return tuple(items)
        if type(value) is dict:
            items, args = dict(value), typing.get_args(annotation)
            key, kind = args if len(args) == 2 else (str, object)
            roll = rng.random()
            if roll < 0.4 or not items:
                items[self.fresh(key if key in (str, int) else str)] = self.fresh(kind)
            elif roll < 0.6:
                items.pop(rng.choice(list(items)))
            else:
                k = rng.choice(list(items))
                items[k] = self.mutate(items[k], kind)
            return dict(list(items.items())[:8])
        if isinstance(value, list):
            item = typing.get_args(annotation)[:1] or (object,)
            items = list(value)
            roll = rng.random()
            if roll < 0.4 or not items:
                items.insert(rng.randrange(len(items) + 1), self.fresh(item[0]))
            elif roll < 0.6:
                items.pop(rng.randrange(len(items)))
            else:
                i = rng.randrange(len(items))
                items[i] = self.mutate(items[i], item[0])
            return items[:8]
        if isinstance(value, Construct) and value.args:
            params = parameters(value.cls) or []
            args = list(value.args)
            i = rng.randrange(len(args))
            annotation = params[i].annotation if i < len(params) else object
            args[i] = self.mutate(args[i], annotation)
            return Construct(value.cls, args)
        if isinstance(value, Member):
            return Member(rng.choice(list(type(value.member))))
        return self.fresh(annotation)

    def mutate_string(self, text: str) -> str:
        rng, pools = self.rng, self.pools
        lines = text.split("\n")
        at = rng.randrange(len(lines) + 1)
        roll = rng.randrange(11)
        if roll == 0:
            lines[at:at] = [pools.line(rng)]
        elif roll == 1:
            lines[at:at] = pools.string(rng).split("\n")
        elif roll == 2 and len(lines) > 1:
            del lines[min(at, len(lines) - 1)]
        elif roll == 3:
            i = min(at, len(lines) - 1)
            lines.insert(i, lines[i])
        elif roll == 4:
            i = min(at, len(lines) - 1)
            lines[i] = lines[i][4:] if lines[i].startswith("    ") else "    " + lines[i]
        elif roll == 5:
            lines[min(at, len(lines) - 1)] = pools.line(rng)
        elif roll == 6:
            return capped(text + rng.choice(["\n", "", " ", "\n\n"]) + pools.string(rng))
        elif roll == 7:
            words = list(re.finditer(_WORD, text))
            if words:
                w = rng.choice(words)
                return capped(text[: w.start()] + rng.choice(pools.words) + text[w.end() :])
        elif roll == 8:
            i = rng.randrange(len(text) + 1)
            return capped(text[:i] + rng.choice(":-=*`()[]{}.,\t ") + text[i:])
        elif roll == 9:  # a heading's underline, as reST, numpydoc and Markdown write them
            i = min(at, len(lines) - 1)
            lines.insert(i + 1, rng.choice("-=~") * len(lines[i].strip()))
        else:
            return capped(text[: rng.randrange(len(text) + 1)])
        return capped("\n".join(lines))


def capped(text: str) -> str:
    return "\n".join(text.split("\n")[:MAX_LINES])[:MAX_STRING]


def _is_mapping(origin: object) -> bool:
    from collections import abc

    return origin in (abc.Mapping, abc.MutableMapping)


def _is_sequence(origin: object) -> bool:
    from collections import abc

    return origin in (abc.Sequence, abc.Iterable, abc.Collection, abc.MutableSequence)


def _user_class(cls: type) -> bool:
    return getattr(cls, "__module__", "builtins") not in ("builtins", "typing", "collections")


def parameters(function) -> list[inspect.Parameter] | None:
    """The parameters a call fills (not *args, **kwargs, self), with annotations resolved where
    they can be; None when it has no readable signature."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    try:
        init = function.__init__ if isinstance(function, type) else function
        hints = typing.get_type_hints(init)
    except Exception:
        hints = {}
    return [
        p.replace(annotation=hints.get(p.name, object))
        for p in signature.parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in ("self", "cls")
    ]
