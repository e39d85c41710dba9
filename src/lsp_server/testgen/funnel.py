"""The funnel every candidate test goes through, each step an exec job in the sandbox:

    generated -> unique -> collects -> passes N/N reruns in random order, inside the existing
    suite -> adds line or branch coverage of the target over the suite and the tests kept
    before it, or kills a mutant of the target the suite lets pass (testgen.mutation) -> kept

A duplicate (the same test under another name) is dropped before anything runs; a test that
passes only some reruns is flaky and never kept; one whose assertion fails every time is a
possible bug, kept aside. Coverage is measured for the suite alone and for every reliable
candidate alone, each in a process of its own (see sandbox_driver: what a test's process says
is believed of that test only), and candidates are then kept greedily, the one that adds most
first, so nothing kept is redundant. A candidate that passed among the others but fails alone
depends on them: flaky.
"""

from __future__ import annotations

import ast
import enum
import json
import time
from collections.abc import Iterable, Sequence

import attrs

from . import mutation, possible_bugs
from .candidates import Candidate
from .jobs import DRIVER, Budget, RunJob, artifact_text, project_bundle, spec, text_file
from .possible_bugs import PossibleBug
from .targets import Target

DEFAULT_RERUNS = 5
RERUN_SHARE = 0.7
"""Of the time left after collection, what the reruns may take; coverage runs take the rest."""


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
    covered: frozenset = frozenset()
    """When kept: the target's ("line", n) and ("branch", from, to) its own run reached."""


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
    coverage_kept: CoverageCount | None = None
    """By the kept tests alone."""

    def count(self, stage: str) -> int:
        return sum(dict(self.stages)[stage])


@attrs.frozen
class FunnelResult:
    report: FunnelReport
    outcomes: tuple[Outcome, ...]
    possible_bugs: tuple[PossibleBug, ...]
    coverage_json: str | None
    """The driver's coverage runs: coverage.py's JSON report of the suite alone and of each
    reliable candidate alone."""
    missing_lines: tuple[int, ...] = ()
    """The target's lines neither the suite nor a kept test runs (empty when not measured)."""
    missing_branches: tuple[tuple[int, int], ...] = ()
    """Its branches (from line, to line; negative: an exit) none of them takes."""

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
    def __init__(
        self, run: RunJob, *, reruns: int = DEFAULT_RERUNS, seed: int = 0, isolated: bool = True
    ) -> None:
        """``isolated``: each test process must run in a sandbox of its own inside the job's;
        False only where the user let jobs run unsandboxed (where none can be nested, tests
        then run as plain processes)."""
        self.run = run
        self.reruns = reruns
        self.seed = seed
        self.isolated = isolated

    def __call__(
        self,
        target: Target,
        candidates: Sequence[Candidate],
        budget: Budget,
        *,
        candidate_dir: str,
        suite: Sequence[str] = (),
        prior: Sequence[Candidate] = (),
    ) -> FunnelResult:
        """``candidate_dir``: where, relative to the project root, candidates are run from
        (where kept tests will go, so the same conftest files apply); ``suite``: the existing
        test files they run among; ``prior``: tests kept before (an earlier round), which run
        as part of the suite."""
        start = time.monotonic()
        fates: dict[str, Outcome] = {}
        shapes: dict[str, Candidate] = {_shape(c): c for c in prior}
        for c in candidates:
            if (first := shapes.setdefault(_shape(c), c)) is not c:
                fates[c.id] = Outcome(c, Fate.DUPLICATE, detail=f"same test as {first.id}")
        unique = [c for c in candidates if c.id not in fates]
        prefix = "" if candidate_dir in ("", ".") else f"{candidate_dir}/"
        files = {_file(prefix, c): c for c in unique}
        prior_files = {_file(prefix, c): c for c in prior}
        node_of = {f"{path}::{c.name}": c for path, c in files.items()}
        bundle = {
            **project_bundle(target),
            **{p: text_file(c.module_text()) for p, c in {**files, **prior_files}.items()},
        }
        suite_paths = [*suite, *prior_files]
        if not unique:
            # Nothing to run but the suite: what it covers is what later rounds aim past.
            measured = self._cover(target, bundle, [], suite_paths, budget) if suite_paths else None
            outcomes = tuple(fates[c.id] for c in candidates)
            return self._result(outcomes, measured, {}, (), start)

        collected, errors = self._collect(target, bundle, [*files, *suite_paths], budget)
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

        adds: dict[str, int] = {}
        measured = None
        if reliable:
            # Quickest first: each is measured alone, and what time does not reach stays
            # unverified.
            reliable.sort(key=lambda n: (_seconds(runs.get(n, [])), n))
            measured = self._cover(target, bundle, reliable, suite_ids, budget)
            adds = measured.keep(reliable) if measured is not None else {}
            for node in reliable:
                c = node_of[node]
                alone = measured.runs.get(node) if measured is not None else None
                if node in adds:
                    fates[c.id] = Outcome(
                        c,
                        Fate.KEPT,
                        self.reruns,
                        self.reruns,
                        adds=adds[node],
                        covered=frozenset(measured.covered(node)),
                    )
                elif alone is not None and alone["detail"].startswith("out of time"):
                    fates[c.id] = Outcome(c, Fate.UNVERIFIED, detail="coverage not measured")
                elif alone is not None and not alone["passed"]:
                    why = f"passed among the others, failed alone: {alone['detail']}"
                    fates[c.id] = Outcome(c, Fate.FLAKY, self.reruns, self.reruns, why)
                elif alone is None or alone["covered"] is None:
                    fates[c.id] = Outcome(c, Fate.UNVERIFIED, detail="coverage not measured")
                else:
                    fates[c.id] = Outcome(c, Fate.REDUNDANT, self.reruns, self.reruns)
            redundant = [n for n in reliable if fates[node_of[n].id].fate == Fate.REDUNDANT]
            if redundant and measured is not None and budget.left() >= mutation.MIN_S:
                kept_now = [n for n in reliable if n in adds]
                killed = self._mutants(
                    target, bundle, redundant, suite_ids + kept_now, measured, budget
                )
                for node, mutant in killed.items():
                    c = node_of[node]
                    fates[c.id] = Outcome(
                        c,
                        Fate.KEPT,
                        self.reruns,
                        self.reruns,
                        detail=f"kills a mutant the suite misses ({mutant})",
                        covered=frozenset(measured.covered(node)),
                    )
        outcomes = tuple(fates[c.id] for c in candidates)
        kept_nodes = [n for n in node_of if fates[node_of[n].id].fate == Fate.KEPT]
        return self._result(outcomes, measured, adds, tuple(bugs), start, kept_nodes)

    def _result(self, outcomes, measured, adds, bugs, start, kept_nodes=()) -> FunnelResult:
        before = after = alone = None
        missing_lines: tuple[int, ...] = ()
        missing_branches: tuple[tuple[int, int], ...] = ()
        if measured is not None and measured.totals is not None:
            covered = measured.suite_covered()
            before = measured.count(covered)
            kept_cover = set().union(*(measured.covered(n) for n in kept_nodes))
            after = measured.count(covered | kept_cover)
            alone = measured.count(kept_cover)
            missing_lines, missing_branches = measured.missing(covered | kept_cover)
        report = self._report(outcomes, before, after, time.monotonic() - start)
        report = attrs.evolve(report, coverage_kept=alone)
        return FunnelResult(
            report,
            outcomes,
            bugs,
            measured.text if measured is not None else None,
            missing_lines,
            missing_branches,
        )

    def _argv(self, command: str, *args: str, seconds: float) -> list[str]:
        """The driver, isolated from the project (``-I``: nothing in it can shadow what the
        driver imports), running the candidates' processes each in a sandbox of its own."""
        argv = ["python", "-I", DRIVER, command, *args]
        argv += ["--deadline", f"{max(seconds - 3.0, seconds * 0.8):.1f}"]
        return argv + ([] if self.isolated else ["--allow-unisolated"])

    # -- the steps, each one job --------------------------------------------------------

    def _collect(
        self, target: Target, bundle: dict[str, str], paths: list[str], budget: Budget
    ) -> tuple[set[str], dict[str, str]]:
        report = "collect.jsonl"
        seconds = budget.share(0.2)
        argv = self._argv("collect", *paths, "--out", report, seconds=seconds)
        result = self.run(spec(target, bundle, argv, timeout_s=seconds, artifacts=[report]))
        events = _events(artifact_text(result, report))
        collected = {e["collected"] for e in events if isinstance(e.get("collected"), str)}
        errors = {
            e["collect_error"]: _last_line(str(e.get("longrepr", "")))
            for e in events
            if isinstance(e.get("collect_error"), str)
        }
        if not events and result.state != "succeeded":  # the job itself failed: say why
            errors = {"": _last_line(result.stderr_tail) or result.state}
        return collected, errors

    def _rerun(
        self, target: Target, bundle: dict[str, str], ids: list[str], budget: Budget
    ) -> dict[str, list[dict]]:
        """Node id -> its records, run by run (a list of that run's records for it)."""
        if not ids:
            return {}
        seconds = budget.share(RERUN_SHARE)
        argv = self._argv(
            "rerun", "ids.txt", "--runs", str(self.reruns), "--seed", str(self.seed),
            "--report-dir", "runs", seconds=seconds,
        )  # fmt: skip
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
            broken = next((e for e in events if "broken" in e), None)
            this_run: dict[str, dict] = {}
            for e in events:
                if isinstance(e.get("nodeid"), str):
                    merged = this_run.setdefault(e["nodeid"], {"passed": True})
                    if isinstance(e.get("duration"), int | float):
                        merged["duration"] = merged.get("duration", 0) + e["duration"]
                    if e.get("outcome") != "passed":
                        merged.update(e)
                        merged["passed"] = False
            if broken is not None:
                # The run did not end as pytest ends: its passes are not believed; the test
                # that was running failed.
                this_run = {n: r for n, r in this_run.items() if not r["passed"]}
                running = broken.get("running")
                if isinstance(running, str) and running not in this_run:
                    detail = str(broken.get("broken", "the run broke off"))
                    if not detail.startswith("out of time"):
                        this_run[running] = {
                            "passed": False,
                            "exception": "ProcessEnded",
                            "longrepr": detail,
                        }
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
            why = "not every rerun got to it: out of time, or another test ended the run"
            return Outcome(c, Fate.UNVERIFIED, passes, len(runs), why), None
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
    ) -> Measured | None:
        args = ("--include", target.relpath)
        text = self._with_suite(
            target, bundle, "cover", reliable, suite_ids, budget, "cover.json", *args
        )
        return Measured.parse(text)

    def _mutants(
        self,
        target: Target,
        bundle: dict[str, str],
        redundant: list[str],
        suite_ids: list[str],
        measured: Measured,
        budget: Budget,
    ) -> dict[str, str]:
        lines = set().union(*(mutation.lines_of(measured.covered(n)) for n in redundant))
        args = (
            "--target", target.relpath, "--lines", ",".join(map(str, sorted(lines))),
            "--limit", str(mutation.MAX_MUTANTS), "--seed", str(self.seed),
        )  # fmt: skip
        text = self._with_suite(
            target, bundle, "mutate", redundant, suite_ids, budget, mutation.REPORT, *args
        )
        return mutation.kills(text, redundant)

    def _with_suite(
        self,
        target: Target,
        bundle: dict[str, str],
        command: str,
        ids: list[str],
        suite_ids: list[str],
        budget: Budget,
        out: str,
        *args: str,
    ) -> str | None:
        """The driver's ``command`` over the tests ``ids`` and the suite's, with the rest of
        the budget: the text of the report it wrote to ``out``, or None."""
        seconds = budget.left()
        argv = self._argv(
            command, "ids.txt", "--suite", "suite.txt", *args, "--out", out, seconds=seconds
        )
        result = self.run(
            spec(
                target,
                bundle,
                argv,
                timeout_s=seconds,
                extra_files={
                    "ids.txt": text_file("".join(f"{n}\n" for n in ids)),
                    "suite.txt": text_file("".join(f"{n}\n" for n in suite_ids)),
                },
                artifacts=[out],
            )
        )
        return artifact_text(result, out)

    def _report(
        self,
        outcomes: Iterable[Outcome],
        before: CoverageCount | None,
        after: CoverageCount | None,
        seconds: float,
    ) -> FunnelReport:
        return report_of(outcomes, self.reruns, before, after, seconds)


def report_of(
    outcomes: Iterable[Outcome],
    reruns: int,
    before: CoverageCount | None,
    after: CoverageCount | None,
    seconds: float,
    kept: CoverageCount | None = None,
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
    return FunnelReport(reruns, engines, stages, dropped, before, after, seconds, kept)


def merged(results: Sequence[FunnelResult], reruns: int) -> FunnelResult:
    """Several funnels over one target (the local engines', then each model round's, each
    run with the tests kept before it as part of the suite) as one: every outcome, coverage
    from before the first to after the last."""
    if len(results) == 1:
        return results[0]
    outcomes = tuple(o for r in results for o in r.outcomes)
    measured = [r for r in results if r.report.coverage_after is not None]
    before = measured[0].report.coverage_before if measured else None
    after = measured[-1].report.coverage_after if measured else None
    kept = None
    if after is not None:
        union = set().union(*(o.covered for o in outcomes if o.fate == Fate.KEPT))
        kept = _count(union, after.lines_total, after.branches_total)
    seconds = sum(r.report.seconds for r in results)
    last = measured[-1] if measured else results[-1]
    return FunnelResult(
        report_of(outcomes, reruns, before, after, seconds, kept),
        outcomes,
        tuple(b for r in results for b in r.possible_bugs),
        last.coverage_json,
        last.missing_lines,
        last.missing_branches,
    )


def _seconds(runs: list[dict]) -> float:
    times = [r["duration"] for r in runs if isinstance(r.get("duration"), int | float)]
    return sum(times) / len(times) if times else 0.0


def _file(prefix: str, c: Candidate) -> str:
    return f"{prefix}test_gantry_{c.id.replace('-', '_')}.py"


@attrs.frozen
class Measured:
    """The driver's coverage runs: per run (the suite, each candidate alone) whether it passed
    and the target's lines and branches it ran."""

    runs: dict[str, dict]
    """Run name -> {"passed", "detail", "covered": set of ("line", n) / ("branch", a, b), or
    None when it was not measured}."""
    totals: tuple[frozenset, frozenset] | None
    """The target's lines and branches; None when no run measured them."""
    text: str

    @classmethod
    def parse(cls, text: str | None) -> Measured | None:
        """None for what is not what the driver writes (the job wrote it: not believed)."""
        if text is None:
            return None
        try:
            data = json.loads(text)
            runs: dict[str, dict] = {}
            totals = None
            for name, run in data["runs"].items():
                report = run["coverage"]
                covered = None
                if report is not None:
                    executed = report["executed_lines"]
                    taken = [tuple(b) for b in report["executed_branches"]]
                    lines = frozenset(executed + report["missing_lines"])
                    branches = frozenset(taken + [tuple(b) for b in report["missing_branches"]])
                    totals = totals or (lines, branches)
                    covered = {("line", n) for n in executed if n in lines}
                    covered |= {("branch", *b) for b in taken if b in branches}
                runs[str(name)] = {
                    "passed": run["passed"] is True,
                    "detail": str(run["detail"]),
                    "covered": covered,
                }
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        return cls(runs, totals, text)

    def covered(self, name: str) -> set:
        run = self.runs.get(name)
        return set(run["covered"] or ()) if run is not None and run["passed"] else set()

    def suite_covered(self) -> set:
        # The suite's run counts even where one of its own tests fails: it is the baseline.
        run = self.runs.get("suite")
        return set(run["covered"] or ()) if run is not None else set()

    def count(self, covered: set) -> CoverageCount:
        lines, branches = self.totals or (frozenset(), frozenset())
        return _count(covered, len(lines), len(branches))

    def missing(self, covered: set) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
        lines, branches = self.totals or (frozenset(), frozenset())
        return (
            tuple(sorted(n for n in lines if ("line", n) not in covered)),
            tuple(sorted(b for b in branches if ("branch", *b) not in covered)),
        )

    def keep(self, reliable: list[str]) -> dict[str, int]:
        """Greedily, the candidates that add most over the suite and those kept before; each
        only on its own run, which it must have passed."""
        covered = self.suite_covered()
        adds: dict[str, int] = {}
        left = {n for n in reliable if self.covered(n)}
        while left:
            # The most new coverage first; ties by node id, so a run is reproducible.
            best = max(sorted(left), key=lambda n: len(self.covered(n) - covered))
            gain = self.covered(best) - covered
            if not gain:
                break
            adds[best] = len(gain)
            covered |= gain
            left.discard(best)
        return adds


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
