"""Candidate tests from the local engines, which need no model: Hypothesis' ghostwriter
(property tests: round trips, fuzzing), Gantry's own coverage-guided search (sandbox_explore:
inputs built from the project's literals, the values the current code returns) and CrossHair's
``cover`` (symbolic execution: concrete inputs and expected values). Each engine runs as an
exec job in the sandbox with its share of the budget, and its output is cut into one candidate
per test function, with the imports and module-level lines it needs."""

from __future__ import annotations

import ast
import time
from collections.abc import Sequence

import attrs

from .jobs import DRIVER, EXPLORER, Budget, RunJob, artifact_text, project_bundle, spec
from .targets import Target

ENGINES = ("hypothesis", "explore", "crosshair")
EXPLORE_SHARE = 0.5
"""Of the time the ghostwriter leaves, the search's part; CrossHair takes the rest."""
MIN_ENGINE_S = 3.0
"""Below this the engines are not started: an interpreter with Hypothesis loaded takes ~1 s."""


@attrs.frozen
class Candidate:
    id: str
    """Unique within a run, e.g. "hypothesis-1"."""
    engine: str
    name: str
    """The test function's name."""
    source: str
    """The test function, decorators included."""
    imports: tuple[str, ...]
    """Import statements of the module it came from (all of them: it may need any)."""
    preamble: tuple[str, ...] = ()
    """Other module-level statements it came with (helpers, constants)."""

    def module_text(self) -> str:
        """A test module holding this candidate alone."""
        head = "\n".join((*self.imports, *self.preamble))
        return f"{head}\n\n\n{self.source}\n"


@attrs.frozen
class EngineRun:
    engine: str
    candidates: tuple[Candidate, ...]
    seconds: float
    problem: str | None = None
    """Why it produced nothing or less than it could (timed out, crashed), for the user."""
    unfinished: tuple[str, ...] = ()
    """Symbols it ran out of time on (CrossHair), for another pass if time is left."""


def split_tests(source: str, engine: str, *, first: int = 1) -> list[Candidate]:
    """One candidate per top-level ``test_*`` function of a test module's source."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    imports: list[str] = []
    preamble: list[str] = []
    tests: list[tuple[str, str]] = []
    lines = source.splitlines()
    for node in tree.body:
        start = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
        text = "\n".join(lines[start - 1 : node.end_lineno])
        if isinstance(node, ast.Import | ast.ImportFrom):
            imports.append(text)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            tests.append((node.name, text))
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            preamble.append(text)  # a docstring or a comment-only string is left behind
    return [
        Candidate(f"{engine}-{first + i}", engine, name, text, tuple(imports), tuple(preamble))
        for i, (name, text) in enumerate(tests)
    ]


def _driver(*args: str) -> list[str]:
    return ["python", DRIVER, *args]


def ghostwriter(target: Target, run: RunJob, seconds: float, bundle: dict[str, str]) -> EngineRun:
    start = time.monotonic()
    names = [] if target.whole_module else [s.name for s in target.symbols]
    out = "ghostwritten.py"
    result = run(
        spec(
            target,
            bundle,
            _driver("ghostwrite", target.module, *names, "--out", out),
            timeout_s=seconds,
            artifacts=[out],
        )
    )
    text = artifact_text(result, out)
    problem = None
    if text is None:
        problem = _failure("hypothesis ghostwriter", seconds, result.state, result.stderr_tail)
    return EngineRun(
        "hypothesis",
        tuple(split_tests(text or "", "hypothesis")),
        time.monotonic() - start,
        problem,
    )


def explore(target: Target, run: RunJob, seconds: float, bundle: dict[str, str]) -> EngineRun:
    start = time.monotonic()
    out = "explored.py"
    # Its own deadline is short of the job's, so it has time to write what it found.
    soft = max(seconds - 3.0, seconds * 0.8)
    names = [s.name for s in target.symbols]
    argv = ["python", EXPLORER, target.module, *names, "--out", out, "--deadline", f"{soft:.1f}"]
    result = run(spec(target, bundle, argv, timeout_s=seconds, artifacts=[out]))
    text = artifact_text(result, out)
    problem = None
    if text is None:
        problem = _failure("coverage-guided search", seconds, result.state, result.stderr_tail)
    found = split_tests(text or "", "explore")
    return EngineRun("explore", tuple(found), time.monotonic() - start, problem)


def crosshair(
    target: Target, run: RunJob, seconds: float, bundle: dict[str, str], *, first: int = 1
) -> EngineRun:
    start = time.monotonic()
    # One `cover` per symbol, each with its share of the time: a whole module in one call
    # spends its time on the first functions and returns nothing when it is cut off.
    names = [s.name for s in target.symbols]
    # The driver stops itself before the job's hard limit, so what it finished comes back.
    soft = max(seconds - 3.0, seconds * 0.8)
    out_dir = "crosshair"
    outputs = [f"{out_dir}/{i:03d}.py" for i in range(len(names))]
    result = run(
        spec(
            target,
            bundle,
            _driver("crosshair", target.module, *names, "--out-dir", out_dir)
            + ["--deadline", f"{soft:.1f}"],
            timeout_s=seconds,
            artifacts=outputs,
        )
    )
    found: list[Candidate] = []
    for path in outputs:
        text = artifact_text(result, path)
        if text is not None:
            found += split_tests(text, "crosshair", first=first + len(found))
    problem = None
    if len(result.artifacts) < len(outputs):
        what = f"crosshair cover finished {len(result.artifacts)} of {len(outputs)} symbols"
        problem = _failure(what, seconds, result.state, result.stderr_tail)
    unfinished = tuple(
        n for n, out in zip(names, outputs, strict=True) if out not in result.artifacts
    )
    return EngineRun("crosshair", tuple(found), time.monotonic() - start, problem, unfinished)


def _failure(what: str, seconds: float, state: str, stderr: str) -> str:
    if state in ("succeeded", "timed_out"):
        return f"{what}: out of time (its share of the budget: {seconds:.1f} s)"
    last = stderr.strip().splitlines()[-1:] or [state]
    return f"{what}: {state}: {last[0][:300]}"


def local_candidates(
    target: Target,
    run: RunJob,
    budget: Budget,
    *,
    engines: Sequence[str] = ENGINES,
    share: float = 0.45,
) -> list[EngineRun]:
    """Each engine in turn, together within ``share`` of what is left of the budget
    (ghostwriter is quick and goes first; the search and CrossHair's symbolic execution share
    what remains)."""
    allowance = budget.share(share)
    if allowance < MIN_ENGINE_S:
        why = f"not run: the budget left the engines {allowance:.1f} s"
        return [EngineRun(engine, (), 0.0, f"{engine}: {why}") for engine in engines]
    bundle = project_bundle(target)
    end = time.monotonic() + allowance
    runs = []
    if "hypothesis" in engines:
        runs.append(ghostwriter(target, run, min(allowance * 0.25, 20.0), bundle))
    if "explore" in engines:
        left = end - time.monotonic()
        runs.append(
            explore(target, run, left * (EXPLORE_SHARE if "crosshair" in engines else 1), bundle)
        )
    if "crosshair" in engines:
        runs.append(crosshair(target, run, max(end - time.monotonic(), 1.0), bundle))
    return runs
