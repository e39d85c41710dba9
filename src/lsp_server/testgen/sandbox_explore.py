"""Characterization tests from a coverage-guided search, run *inside* the sandbox.

Shipped into each job beside the driver as ``_gantry/_gantry_explore.py``, with
``_gantry_inputs`` (what inputs are made of) and ``_gantry_render`` (how finds become tests);
standard library only. It calls the target's functions, methods and constructors with inputs
built from the project's own literals, mutates the inputs that reached new lines or branches
(arcs) of the target module, and keeps those that did; each kept input, shrunk while it still
reaches what it was kept for, becomes a test asserting what the code returns today. Pynguin's
idea, seeded search with regression assertions, without its install (its pins conflict with
Gantry's own pytest).

    python _gantry_explore.py MODULE SYMBOL... --out FILE --deadline SECONDS [--seed N]
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import importlib
import inspect
import io
import os
import random
import signal
import sys
import time

from _gantry_driver import add_project_site
from _gantry_inputs import Inputs, Pools, capped, materialize, parameters
from _gantry_render import Imports, passes, render

CALL_TIMEOUT_S = 1.0
MAX_TESTS = 24
SEARCH_SHARE = 0.7
"""Of the deadline, what the search takes; shrinking, observing and checking take the rest."""


class CallTimeout(BaseException):
    """A call ran past CALL_TIMEOUT_S (a BaseException: the code's ``except Exception`` must
    not swallow it)."""


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
            params = parameters(thing)
            if params is not None and not issubclass(thing, enum.Enum | BaseException):
                found.append(Callee(name, thing, params))
            for attr, member in sorted(vars(thing).items()):
                if attr.startswith("_"):
                    continue
                raw = member.__func__ if isinstance(member, staticmethod | classmethod) else member
                if not inspect.isfunction(raw):
                    continue
                bound = getattr(thing, attr)
                params = parameters(bound)
                if params is None:
                    continue
                static = isinstance(member, staticmethod | classmethod)
                found.append(Callee(f"{name}.{attr}", bound, params, None if static else thing))
        elif callable(thing) and not inspect.iscoroutinefunction(thing):
            params = parameters(thing)
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


def call(
    entry: Entry, tracer: Tracer | None = None, receivers: list | None = None
) -> tuple[str, object]:
    """("return", value), ("raise", exception type) or ("timeout"/"broken", None); a method's
    receiver is appended to ``receivers``, to be observed after the call."""
    callee = entry.callee

    def invoke():
        args = [materialize(a) for a in entry.args]
        if callee.owner is None:
            return callee.function(*args)
        receiver = callee.owner(*[materialize(a) for a in entry.receiver])
        if receivers is not None:
            receivers.append(receiver)
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
        back = min(int(self.rng.expovariate(0.3)), len(corpus) - 1)
        parent = corpus[-1 - back]
        args, receiver = list(parent.args), list(parent.receiver)
        for _ in range(1 + int(self.rng.expovariate(1.0))):
            if receiver and (not args or self.rng.random() < 0.15):
                owner_params = parameters(callee.owner) or []
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
    return capped("\n".join(a[: rng.randrange(len(a) + 1)] + b[rng.randrange(len(b)) :]))


def _size(entry: Entry) -> int:
    return sum(len(a) if isinstance(a, str) else 1 for a in entry.args)


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
    add_project_site()
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
        test = render(search.shrink(entry, needed, shrink_until), number, imports, call)
        if test is not None:
            tests.append(test)
    header = "\n".join(["import pytest", *imports.lines()])
    kept = [t for t in tests if time.monotonic() < end + 5 and passes(t, header, guarded)]
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
