"""The funnel every candidate test goes through, each step an exec job in the sandbox:

    generated -> unique -> collects -> passes N/N reruns in random order, inside the existing
    suite -> adds line or branch coverage of the target over the suite and the tests kept
    before it -> kept

A duplicate (the same test under another name) is dropped before anything runs; a test that
passes only some reruns is flaky and never kept; one whose assertion fails every time is a
possible bug, kept aside. Coverage is measured once for the suite and every reliable candidate
(a coverage.py context per test), and candidates are then kept greedily, the one that adds
most first, so nothing kept is redundant.
"""

from __future__ import annotations

import ast
import enum
import json
import time
from collections.abc import Iterable, Sequence

import attrs

from . import possible_bugs
from .candidates import Candidate
from .jobs import Budget, RunJob, artifact_text, project_bundle, spec, text_file
from .possible_bugs import PossibleBug
from .targets import Target

DEFAULT_RERUNS = 5
_DRIVER_ARGS = ["-p", "_gantry_driver", "-p", "no:randomly", "-p", "no:cacheprovider"]


class Fate(enum.StrEnum):
    KEPT = "kept"
    DUPLICATE = "duplicate"
    NOT_COLLECTED = "did not collect"
    FLAKY = "flaky"
    FAILING = "possible bug"
    ERROR = "error"
    UNVERIFIED = "out of time"
    REDUNDANT = "no added coverage"


STAGES = ("generated", "unique", "collected", "passed every rerun", "kept")
"""The funnel's stages, each a subset of the one before."""
_REACHED = {
    Fate.DUPLICATE: 1,
    Fate.NOT_COLLECTED: 2,
    Fate.FLAKY: 3,
    Fate.FAILING: 3,
    Fate.ERROR: 3,
    Fate.UNVERIFIED: 3,
    Fate.REDUNDANT: 4,
    Fate.KEPT: 5,
}
"""How many of STAGES a candidate with that fate passed."""


@attrs.frozen
class Outcome:
    candidate: Candidate
    fate: Fate
    passes: int = 0
    runs: int = 0
    detail: str = ""
    """Why it was dropped, in a line (the exception, the collection error, the duplicate of)."""
    adds: int = 0
    """Lines plus branches of the target it added when kept."""


@attrs.frozen
class CoverageCount:
    lines: int
    lines_total: int
    branches: int
    branches_total: int

    @property
    def percent(self) -> float:
        """Line+branch coverage, as coverage.py counts it."""
        total = self.lines_total + self.branches_total
        return 100.0 * (self.lines + self.branches) / total if total else 100.0


@attrs.frozen
class FunnelReport:
    reruns: int
    engines: tuple[str, ...]
    stages: tuple[tuple[str, tuple[int, ...]], ...]
    """(stage, count per engine in ``engines`` order), in STAGES order."""
    dropped: tuple[tuple[str, int], ...]
    """(fate, count) of those not kept."""
    coverage_before: CoverageCount | None
    """The target's coverage by the existing suite; None when coverage could not be measured."""
    coverage_after: CoverageCount | None
    """By the suite and the kept tests."""
    seconds: float

    def count(self, stage: str) -> int:
        return sum(dict(self.stages)[stage])


@attrs.frozen
class FunnelResult:
    report: FunnelReport
    outcomes: tuple[Outcome, ...]
    possible_bugs: tuple[PossibleBug, ...]
    coverage_json: str | None
    """coverage.py's JSON report of the suite and the reliable candidates."""

    @property
    def kept(self) -> tuple[Candidate, ...]:
        return tuple(o.candidate for o in self.outcomes if o.fate == Fate.KEPT)


def _shape(candidate: Candidate) -> str:
    """The test with its name blanked: two candidates of one shape are one test."""
    try:
        node = ast.parse(candidate.source).body[0]
    except (SyntaxError, IndexError):
        return candidate.source
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        node.name = "_"
    return ast.dump(node)


def _events(text: str | None) -> list[dict]:
    """The driver's JSON lines; the job wrote them, so a garbled line is skipped, not trusted."""
    events = []
    for line in (text or "").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


class Funnel:
    def __init__(self, run: RunJob, *, reruns: int = DEFAULT_RERUNS, seed: int = 0) -> None:
        self.run = run
        self.reruns = reruns
        self.seed = seed

    def __call__(
        self,
        target: Target,
        candidates: Sequence[Candidate],
        budget: Budget,
        *,
        candidate_dir: str,
        suite: Sequence[str] = (),
    ) -> FunnelResult:
        """``candidate_dir``: where, relative to the project root, candidates are run from
        (where kept tests will go, so the same conftest files apply); ``suite``: the existing
        test files they run among."""
        start = time.monotonic()
        fates: dict[str, Outcome] = {}
        shapes: dict[str, Candidate] = {}
        for c in candidates:
            if (first := shapes.setdefault(_shape(c), c)) is not c:
                fates[c.id] = Outcome(c, Fate.DUPLICATE, detail=f"same test as {first.id}")
        unique = [c for c in candidates if c.id not in fates]
        if not unique:  # nothing to run: the suite alone tells nothing about candidates
            outcomes = tuple(fates[c.id] for c in candidates)
            report = self._report(outcomes, None, None, time.monotonic() - start)
            return FunnelResult(report, outcomes, (), None)
        prefix = "" if candidate_dir in ("", ".") else f"{candidate_dir}/"
        files = {f"{prefix}test_gantry_{c.id.replace('-', '_')}.py": c for c in unique}
        node_of = {f"{path}::{c.name}": c for path, c in files.items()}
        bundle = {
            **project_bundle(target),
            **{p: text_file(c.module_text()) for p, c in files.items()},
        }

        collected, errors = self._collect(target, bundle, [*files, *suite], budget)
        suite_ids = sorted(n for n in collected if n.split("::")[0] not in files)
        for node, c in node_of.items():
            if node not in collected:
                detail = next((e for path, e in errors.items() if node.startswith(path)), "")
                fates[c.id] = Outcome(c, Fate.NOT_COLLECTED, detail=detail)
        ids = [n for n in node_of if n in collected]

        runs = self._rerun(target, bundle, ids + suite_ids, budget)
        reliable = []
        bugs = []
        for node in ids:
            c = node_of[node]
            outcome, bug = self._judge(c, runs.get(node, []))
            if bug is not None:
                bugs.append(bug)
            if outcome is None:
                reliable.append(node)
            else:
                fates[c.id] = outcome

        before = after = None
        coverage_json = None
        if reliable:
            before, after, adds, coverage_json = self._cover(
                target, bundle, reliable, suite_ids, budget
            )
            for node in reliable:
                c = node_of[node]
                if node in adds:
                    fates[c.id] = Outcome(c, Fate.KEPT, self.reruns, self.reruns, adds=adds[node])
                elif after is None:
                    fates[c.id] = Outcome(c, Fate.UNVERIFIED, detail="coverage not measured")
                else:
                    fates[c.id] = Outcome(c, Fate.REDUNDANT, self.reruns, self.reruns)
        outcomes = tuple(fates[c.id] for c in candidates)
        return FunnelResult(
            self._report(outcomes, before, after, time.monotonic() - start),
            outcomes,
            tuple(bugs),
            coverage_json,
        )

    # -- the steps, each one job --------------------------------------------------------

    def _collect(
        self, target: Target, bundle: dict[str, str], paths: list[str], budget: Budget
    ) -> tuple[set[str], dict[str, str]]:
        report = "collect.jsonl"
        argv = ["python", "-m", "pytest", "--collect-only", "-q", *_DRIVER_ARGS]
        argv += ["--rootdir=.", f"--gantry-report={report}", *paths]
        result = self.run(
            spec(target, bundle, argv, timeout_s=budget.share(0.2), artifacts=[report])
        )
        events = _events(artifact_text(result, report))
        collected = {e["collected"] for e in events if isinstance(e.get("collected"), str)}
        errors = {
            e["collect_error"]: _last_line(str(e.get("longrepr", "")))
            for e in events
            if isinstance(e.get("collect_error"), str)
        }
        return collected, errors

    def _rerun(
        self, target: Target, bundle: dict[str, str], ids: list[str], budget: Budget
    ) -> dict[str, list[dict]]:
        """Node id -> its records, run by run (a list of that run's records for it)."""
        if not ids:
            return {}
        seconds = budget.share(0.6)
        argv = ["python", "-m", "_gantry_driver", "rerun", "ids.txt", "--runs", str(self.reruns)]
        argv += ["--seed", str(self.seed), "--report-dir", "runs"]
        argv += ["--deadline", f"{max(seconds - 3.0, seconds * 0.8):.1f}"]
        reports = [f"runs/run{i}.jsonl" for i in range(self.reruns)]
        result = self.run(
            spec(
                target,
                bundle,
                argv,
                timeout_s=seconds,
                extra_files={"ids.txt": text_file("\n".join(ids) + "\n")},
                artifacts=reports,
            )
        )
        per_node: dict[str, list[dict]] = {}
        for path in reports:
            if path not in result.artifacts:
                continue
            events = _events(artifact_text(result, path))
            this_run: dict[str, dict] = {}
            for e in events:
                if isinstance(e.get("nodeid"), str):
                    merged = this_run.setdefault(e["nodeid"], {"passed": True})
                    if e.get("outcome") != "passed":
                        merged.update(e)
                        merged["passed"] = False
            for node, record in this_run.items():
                per_node.setdefault(node, []).append(record)
        return per_node

    def _judge(self, c: Candidate, runs: list[dict]) -> tuple[Outcome | None, PossibleBug | None]:
        """None for a candidate that passed every rerun, else its outcome (and the possible
        bug, for one whose assertion failed every time)."""
        passes = sum(r["passed"] for r in runs)
        failures = [r for r in runs if not r["passed"]]
        if passes == self.reruns:
            return None, None
        if len(runs) < self.reruns and not failures:
            return Outcome(c, Fate.UNVERIFIED, passes, len(runs), "reruns ran out of time"), None
        if passes:
            return Outcome(
                c, Fate.FLAKY, passes, len(runs), f"passed {passes} of {len(runs)}"
            ), None
        if all(r.get("assertion") for r in failures):
            bug = possible_bugs.from_failure(c, str(failures[0].get("longrepr", "")), len(failures))
            return Outcome(c, Fate.FAILING, 0, len(runs), bug.assertion.splitlines()[0]), bug
        exc = failures[0].get("exception") or failures[0].get("outcome", "failed")
        detail = f"{exc}: {_last_line(str(failures[0].get('longrepr', '')))}"
        return Outcome(c, Fate.ERROR, 0, len(runs), detail), None

    def _cover(
        self,
        target: Target,
        bundle: dict[str, str],
        reliable: list[str],
        suite_ids: list[str],
        budget: Budget,
    ) -> tuple[CoverageCount | None, CoverageCount | None, dict[str, int], str | None]:
        argv = ["python", "-m", "_gantry_driver", "cover", "ids.txt", "--include", target.relpath]
        argv += ["--json", "coverage.json", "--contexts", "contexts.json"]
        result = self.run(
            spec(
                target,
                bundle,
                argv,
                timeout_s=budget.left(),
                extra_files={"ids.txt": text_file("\n".join(suite_ids + reliable) + "\n")},
                artifacts=["coverage.json", "contexts.json"],
            )
        )
        report_text = artifact_text(result, "coverage.json")
        contexts_text = artifact_text(result, "contexts.json")
        if report_text is None or contexts_text is None:
            return None, None, {}, None
        try:
            files = json.loads(report_text)["files"]
            if not files:
                return None, None, {}, report_text
            measured = next(iter(files.values()))
            lines = set(measured["executed_lines"]) | set(measured["missing_lines"])
            branches = {
                tuple(b) for b in measured["executed_branches"] + measured["missing_branches"]
            }
            per_test = {
                node: {("line", n) for n in data["lines"] if n in lines}
                | {("branch", *a) for a in map(tuple, data["arcs"]) if a in branches}
                for node, data in json.loads(contexts_text).items()
            }
        except (ValueError, KeyError, TypeError, AttributeError, StopIteration):
            return None, None, {}, None  # not what the driver writes: nothing is measured
        covered: set = set().union(*(per_test.get(n, set()) for n in suite_ids))
        before = _count(covered, len(lines), len(branches))
        adds: dict[str, int] = {}
        left = set(reliable)
        while left:
            # The most new coverage first; ties by node id, so a run is reproducible.
            best = max(sorted(left), key=lambda n: len(per_test.get(n, set()) - covered))
            gain = per_test.get(best, set()) - covered
            if not gain:
                break
            adds[best] = len(gain)
            covered |= gain
            left.discard(best)
        return before, _count(covered, len(lines), len(branches)), adds, report_text

    def _report(
        self,
        outcomes: Iterable[Outcome],
        before: CoverageCount | None,
        after: CoverageCount | None,
        seconds: float,
    ) -> FunnelReport:
        outcomes = list(outcomes)
        engines = tuple(dict.fromkeys(o.candidate.engine for o in outcomes))
        stages = tuple(
            (
                stage,
                tuple(
                    sum(1 for o in outcomes if o.candidate.engine == e and _REACHED[o.fate] > i)
                    for e in engines
                ),
            )
            for i, stage in enumerate(STAGES)
        )
        dropped = tuple(
            (fate.value, n)
            for fate in Fate
            if fate != Fate.KEPT and (n := sum(1 for o in outcomes if o.fate == fate))
        )
        return FunnelReport(self.reruns, engines, stages, dropped, before, after, seconds)


def _count(covered: set, lines_total: int, branches_total: int) -> CoverageCount:
    return CoverageCount(
        sum(1 for k in covered if k[0] == "line"),
        lines_total,
        sum(1 for k in covered if k[0] == "branch"),
        branches_total,
    )


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else ""
