"""Characterization tests from a coverage-guided search, run *inside* the sandbox.

Shipped into each job beside the driver as ``_gantry/_gantry_explore.py``; it imports only the
standard library. It calls the target's functions, methods and constructors with inputs built
from the project's own literals (every string and number in its Python files: the section
titles a parser looks for, the names a dispatcher switches on, the examples its docstrings and
tests hold), mutates the inputs that reached new lines or branches of the target module
(splicing in lines of other literals, dropping, repeating or indenting lines, nudging numbers),
and keeps those that did. Each kept input, shrunk while it still reaches what it was kept for,
becomes a test that makes the same call and asserts what the code returns today (values, the
public attributes of objects, the exception raised), observed twice and asserted only where
both agree. Pynguin's idea, seeded search with regression assertions, without its install (its
pins conflict with Gantry's own pytest).

What it writes is code a person will run outside any sandbox, and the code under test chose
the values it observed. So nothing it renders comes from the code's own ``repr``: values are
asserted only when their type is exactly a builtin literal type and the rendered text parses
back (``ast.literal_eval``) to an equal value; attribute, type and member names only when they
are identifiers.

    python _gantry_explore.py MODULE SYMBOL... --out FILE --deadline SECONDS [--seed N]
"""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import enum
import importlib
import inspect
import io
import keyword
import math
import os
import random
import re
import signal
import sys
import time
import types
import typing

CALL_TIMEOUT_S = 1.0
MAX_STRING = 800
MAX_LINES = 24
MAX_TESTS = 24
MAX_ASSERTS = 20
LITERAL_REPR_MAX = 240
SEARCH_SHARE = 0.7
"""Of the deadline, what the search takes; shrinking, observing and checking take the rest."""
_SKIP_DIRS = {"_gantry", "__pycache__", "node_modules", "build", "dist", "venv", "env"}
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\S")
_LITERAL_TYPES = (str, int, float, bool, bytes, type(None))


class CallTimeout(BaseException):
    """A call ran past CALL_TIMEOUT_S (a BaseException: the code's ``except Exception`` must
    not swallow it)."""


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
    return value


class Inputs:
    """Builds and mutates argument values from annotations, defaults and the pools."""

    def __init__(self, pools: Pools, rng: random.Random) -> None:
        self.pools, self.rng = pools, rng

    def fresh(self, annotation: object, default: object = inspect.Parameter.empty, depth=0):
        rng = self.rng
        if type(default) in _LITERAL_TYPES and rng.random() < 0.3:
            return default
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin in (typing.Union, types.UnionType):
            return self.fresh(rng.choice(args), depth=depth)
        if origin is typing.Literal:
            return rng.choice([a for a in args if type(a) in _LITERAL_TYPES] or [None])
        if origin is tuple and args and args[-1] is not Ellipsis:  # tuple[str, int]
            return tuple(self.fresh(a, depth=depth + 1) for a in args)
        if origin in (list, tuple, set, frozenset) or _is_sequence(origin):
            item = args[0] if args else object
            items = [self.fresh(item, depth=depth + 1) for _ in range(rng.randrange(0, 4))]
            return tuple(items) if origin is tuple else items
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
        if type(default) in _LITERAL_TYPES and default is not None:
            return self.fresh(type(default), depth=depth)
        roll = rng.random()
        if roll < 0.6:
            return self.pools.string(rng)
        if roll < 0.8:
            return rng.choice(self.pools.ints)
        return None if roll < 0.9 else rng.random() < 0.5

    def construct(self, cls: type, depth: int) -> Construct | None:
        params = _params(cls)
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
            params = _params(value.cls) or []
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
        roll = rng.randrange(10)
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
            return _capped(text + rng.choice(["\n", "", " ", "\n\n"]) + pools.string(rng))
        elif roll == 7:
            words = list(re.finditer(_WORD, text))
            if words:
                w = rng.choice(words)
                return _capped(text[: w.start()] + rng.choice(pools.words) + text[w.end() :])
        elif roll == 8:
            i = rng.randrange(len(text) + 1)
            return _capped(text[:i] + rng.choice(":-=*`()[]{}.,\t ") + text[i:])
        else:
            return _capped(text[: rng.randrange(len(text) + 1)])
        return _capped("\n".join(lines))


def _capped(text: str) -> str:
    return "\n".join(text.split("\n")[:MAX_LINES])[:MAX_STRING]


def _is_sequence(origin: object) -> bool:
    from collections import abc

    return origin in (abc.Sequence, abc.Iterable, abc.Collection, abc.MutableSequence)


def _user_class(cls: type) -> bool:
    return getattr(cls, "__module__", "builtins") not in ("builtins", "typing", "collections")


def _params(function) -> list[inspect.Parameter] | None:
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


# -- what is called ------------------------------------------------------------------------


class Callee:
    """A function, a constructor, or a method called on a fresh instance of its class."""

    def __init__(self, label: str, function, params, owner: type | None = None) -> None:
        self.label, self.function, self.params, self.owner = label, function, params, owner
        self.method = label.rsplit(".", 1)[-1]
        self.corpus: list[Entry] = []
        self.finds = 0
        self.timeouts = 0

    def weight(self) -> float:
        """How often it is picked: more for what finds, far less for what hangs."""
        return (1 + self.finds) / (1 + 4 * self.timeouts)


class Entry:
    """An input that reached something new: the call's arguments and what it covered."""

    def __init__(self, callee: Callee, args: list, receiver: list, arcs: frozenset) -> None:
        self.callee, self.args, self.receiver, self.arcs = callee, args, receiver, arcs


def callees(module, names: list[str]) -> list[Callee]:
    found = []
    for name in names:
        thing = getattr(module, name, None)
        if inspect.isclass(thing):
            params = _params(thing)
            if params is not None and not issubclass(thing, enum.Enum | BaseException):
                found.append(Callee(name, thing, params))
            for attr, member in sorted(vars(thing).items()):
                if attr.startswith("_"):
                    continue
                raw = member.__func__ if isinstance(member, staticmethod | classmethod) else member
                if not inspect.isfunction(raw):
                    continue
                bound = getattr(thing, attr)
                params = _params(bound)
                if params is None:
                    continue
                static = isinstance(member, staticmethod | classmethod)
                found.append(Callee(f"{name}.{attr}", bound, params, None if static else thing))
        elif callable(thing) and not inspect.iscoroutinefunction(thing):
            params = _params(thing)
            if params is not None:
                found.append(Callee(name, thing, params))
    return found


# -- running a call, traced ----------------------------------------------------------------


class Tracer:
    """The arcs (line to line, entry and exit) a call runs in the target file."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.arcs: set = set()

    def __call__(self, frame, event, arg):
        if frame.f_code.co_filename != self.filename:
            return None
        arcs = self.arcs
        last = -frame.f_code.co_firstlineno

        def local(frame, event, arg):
            nonlocal last
            if event == "line":
                arcs.add((last, frame.f_lineno))
                last = frame.f_lineno
            elif event == "return":
                arcs.add((last, -frame.f_code.co_firstlineno))
            return local

        return local


def _alarm(signum, frame):
    raise CallTimeout


def call(entry: Entry, tracer: Tracer | None = None) -> tuple[str, object]:
    """("return", value), ("raise", exception type) or ("timeout"/"broken", None)."""
    callee = entry.callee

    def invoke():
        args = [materialize(a) for a in entry.args]
        if callee.owner is None:
            return callee.function(*args)
        receiver = callee.owner(*[materialize(a) for a in entry.receiver])
        return getattr(receiver, callee.method)(*args)

    return guarded(invoke, tracer)


def guarded(invoke, tracer: Tracer | None = None) -> tuple[str, object]:
    """``invoke()`` with a time limit, its output swallowed, traced when a tracer is given."""
    sink = io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, CALL_TIMEOUT_S)
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            if tracer is not None:
                sys.settrace(tracer)
            try:
                return "return", invoke()
            finally:
                sys.settrace(None)
    except CallTimeout:
        return "timeout", None
    except (KeyboardInterrupt, RecursionError, MemoryError):
        return "broken", None
    except BaseException as exc:  # what the code raises is what is observed
        return "raise", type(exc)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- the search ----------------------------------------------------------------------------


class Search:
    def __init__(self, target_file: str, found: list[Callee], inputs: Inputs) -> None:
        self.tracer = Tracer(target_file)
        self.callees, self.inputs, self.rng = found, inputs, inputs.rng
        self.covered: set = set()
        self.attempts = 0

    def fresh(self, callee: Callee) -> Entry:
        receiver = []
        if callee.owner is not None:
            made = self.inputs.construct(callee.owner, 1)
            receiver = made.args if made is not None else []
        args = [self.inputs.fresh(p.annotation, p.default) for p in callee.params]
        return Entry(callee, args, receiver, frozenset())

    def mutant(self, callee: Callee) -> Entry:
        # The newest finds are mutated most: they are where the search is getting somewhere.
        corpus = callee.corpus
        parent = corpus[min(int(self.rng.expovariate(0.3)), len(corpus) - 1) * -1 - 1]
        args, receiver = list(parent.args), list(parent.receiver)
        for _ in range(1 + int(self.rng.expovariate(1.0))):
            if receiver and (not args or self.rng.random() < 0.15):
                owner_params = _params(callee.owner) or []
                i = self.rng.randrange(len(receiver))
                ann = owner_params[i].annotation if i < len(owner_params) else object
                receiver[i] = self.inputs.mutate(receiver[i], ann)
            elif args:
                i = self.rng.randrange(len(args))
                other = self.rng.choice(corpus).args[i]
                if isinstance(args[i], str) and isinstance(other, str) and self.rng.random() < 0.2:
                    args[i] = _spliced(args[i], other, self.rng)
                else:
                    args[i] = self.inputs.mutate(args[i], callee.params[i].annotation)
        return Entry(callee, args, receiver, frozenset())

    def attempt(self, entry: Entry) -> bool:
        self.tracer.arcs = set()
        outcome, _ = call(entry, self.tracer)
        self.attempts += 1
        entry.callee.timeouts += outcome == "timeout"
        arcs = frozenset(self.tracer.arcs)
        if outcome in ("timeout", "broken") or arcs <= self.covered:
            return False
        entry.arcs = arcs
        self.covered |= arcs
        entry.callee.corpus.append(entry)
        entry.callee.finds += 1
        return True

    def run(self, until: float) -> None:
        for callee in self.callees:  # every callee once, before any is favoured
            self.attempt(self.fresh(callee))
        while time.monotonic() < until and self.callees:
            weights = [c.weight() for c in self.callees]
            callee = self.rng.choices(self.callees, weights)[0]
            use_corpus = callee.corpus and self.rng.random() < 0.8
            self.attempt(self.mutant(callee) if use_corpus else self.fresh(callee))

    def chosen(self) -> list[tuple[Entry, frozenset]]:
        """A greedy cover: each entry with the arcs it alone adds, most first, none redundant."""
        entries = [e for c in self.callees for e in c.corpus]
        picked, covered = [], set()
        while entries and len(picked) < MAX_TESTS:
            best = max(entries, key=lambda e: (len(e.arcs - covered), -_size(e)))
            adds = best.arcs - covered
            if not adds:
                break
            picked.append((best, frozenset(adds)))
            covered |= adds
            entries.remove(best)
        return picked

    def shrink(self, entry: Entry, needed: frozenset, until: float) -> Entry:
        """Drop lines of the string arguments, then cut the rest shorter, while the call still
        reaches everything it was kept for."""
        for i, value in enumerate(entry.args):
            if not isinstance(value, str):
                continue
            lines = value.split("\n")
            for j in reversed(range(len(lines))):
                if len(lines) > 1 and time.monotonic() < until:
                    entry, lines = self._try(entry, i, needed, lines, lines[:j] + lines[j + 1 :])
            for j in range(len(lines)):
                while len(lines[j]) > 8 and time.monotonic() < until:
                    half = len(lines[j]) // 2
                    for cut in (lines[j][:half].rstrip(), lines[j][half:]):
                        entry, after = self._try(
                            entry, i, needed, lines, [*lines[:j], cut, *lines[j + 1 :]]
                        )
                        if after is not lines:
                            break
                    if after is lines:
                        break
                    lines = after
        return entry

    def _try(self, entry: Entry, i: int, needed: frozenset, lines: list, trial: list):
        """(entry, lines) with argument ``i`` made of ``trial`` if that still reaches
        ``needed``; else as they were."""
        candidate = Entry(entry.callee, list(entry.args), entry.receiver, frozenset())
        candidate.args[i] = "\n".join(trial)
        self.tracer.arcs = set()
        outcome = call(candidate, self.tracer)[0]
        if outcome in ("timeout", "broken") or not needed <= self.tracer.arcs:
            return entry, lines
        candidate.arcs = frozenset(self.tracer.arcs)
        return candidate, trial


def _spliced(text: str, other: str, rng: random.Random) -> str:
    """The head of one input's lines and the tail of another's: two finds, one input."""
    a, b = text.split("\n"), other.split("\n")
    return _capped("\n".join(a[: rng.randrange(len(a) + 1)] + b[rng.randrange(len(b)) :]))


def _size(entry: Entry) -> int:
    return sum(len(a) if isinstance(a, str) else 1 for a in entry.args)


# -- observing and rendering ----------------------------------------------------------------


class Imports:
    """``from module import name`` lines, refusing a name already taken by another module."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def name_of(self, thing) -> str | None:
        module = getattr(thing, "__module__", None)
        qualname = getattr(thing, "__qualname__", None)
        if not isinstance(module, str) or not isinstance(qualname, str):
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
        if type(v) in _LITERAL_TYPES:
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
    if type(a) in _LITERAL_TYPES:  # a long string: its length
        if type(a) is str and len(a) == len(b):
            out.append(f"assert len({expr}) == {len(a)}")
        return
    if inspect.isroutine(a) or inspect.ismodule(a) or inspect.isclass(a):
        return
    kind = imports.name_of(type(a))
    if kind is not None:  # a type that cannot be imported by its name is not named
        out.append(f"assert isinstance({expr}, {kind})")
    fields, others = getattr(a, "__dict__", None), getattr(b, "__dict__", None)
    if type(fields) is dict and type(others) is dict:
        for name in sorted(n for n in fields if type(n) is str and n in others):
            if not name.startswith("_") and _identifier(name):
                observe(fields[name], others[name], f"{expr}.{name}", imports, out, depth + 1)


def render(entry: Entry, number: int, imports: Imports) -> str | None:
    """The test for ``entry``, or None when what it does cannot be asserted the same twice."""
    callee = entry.callee
    (outcome, value), again = call(entry), call(entry)
    if outcome in ("timeout", "broken") or outcome != again[0]:
        return None
    asserts: list[str] = []
    if outcome == "raise" and value is not again[1]:
        return None
    if outcome == "return":
        observe(value, again[1], "result", imports, asserts)
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
    if type(value) in (list, tuple):
        parts = [_source(v, imports) for v in value]
        if None in parts:
            return None
        if type(value) is list:
            return f"[{', '.join(parts)}]"
        return f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"
    if type(value) in _LITERAL_TYPES:
        text = repr(value)
        return text if ast.literal_eval(text) == value else None
    return None


def _passes(test: str, header: str) -> bool:
    """Whether the rendered test passes here, in a namespace of its own."""
    namespace: dict = {}
    name = test.split("(", 1)[0][len("def ") :]
    try:
        exec(compile(header + "\n" + test, "<explored>", "exec"), namespace)  # noqa: S102
    except Exception:
        return False
    return guarded(namespace[name])[0] == "return"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="_gantry_explore")
    parser.add_argument("module")
    parser.add_argument("symbols", nargs="*")
    parser.add_argument("--out", required=True)
    parser.add_argument("--deadline", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_intermixed_args(argv)
    start = time.monotonic()
    end = start + args.deadline
    module = importlib.import_module(args.module)
    target_file = os.path.realpath(module.__file__)
    names = args.symbols or [n for n in vars(module) if not n.startswith("_")]
    rng = random.Random(args.seed)
    search = Search(module.__file__, callees(module, names), Inputs(Pools(".", target_file), rng))
    search.run(start + args.deadline * SEARCH_SHARE)
    imports, tests = Imports(), []
    for number, (entry, needed) in enumerate(search.chosen(), 1):
        if time.monotonic() >= end:
            break
        shrink_until = min(end, time.monotonic() + (end - time.monotonic()) / 4)
        test = render(search.shrink(entry, needed, shrink_until), number, imports)
        if test is not None:
            tests.append(test)
    header = "\n".join(["import pytest", *imports.lines()])
    kept = [t for t in tests if time.monotonic() < end + 5 and _passes(t, header)]
    with open(args.out + ".part", "w", encoding="utf-8") as out:
        out.write(
            '"""Characterization tests: inputs from a coverage-guided search, expected values'
            ' as the code returns them today."""\n\n'
        )
        out.write(header + "\n\n\n" + "\n\n".join(kept))
    os.replace(args.out + ".part", args.out)
    covered = len(search.covered)
    print(
        f"explored: {search.attempts} calls, {len(kept)} tests over {covered} arcs",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
