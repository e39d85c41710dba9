"""Test generation for real: Hypothesis' ghostwriter and CrossHair run in the bubblewrap
sandbox on a small fixture module, and their candidates (with a few written by hand: a flaky
one, a duplicate, one that fails, one that does not import) go through the funnel, whose every
step is a sandboxed exec job running real pytest and coverage.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lsp_server.testgen import candidates, jobs, targets
from lsp_server.testgen.candidates import Candidate
from lsp_server.testgen.funnel import Fate, Funnel, FunnelResult
from remote_exec.gateway.config import DEFAULT_ENV_ALLOW
from remote_exec.jobs import ExecResult, ExecSpec
from remote_exec.sandbox import Sandbox

FIXTURE = Path(__file__).parent / "data" / "testgen" / "project"
FUNNEL_BUDGET_S = 240

FLAKY = Candidate(
    "hand-1",
    "hand",
    "test_clamp_flaky",
    # Passes on reruns 1, 3 and 5 of 5, fails on 2 and 4: every rerun starts from fresh files
    # (nothing a run leaves is seen by the next), and the driver says which rerun it is.
    "def test_clamp_flaky():\n"
    "    n = int(os.environ['GANTRY_RERUN'])\n"
    "    assert n % 2 == 0\n"
    "    assert clamp(n, 100, 200) == 100\n",
    ("import os", "from textutils import clamp"),
)
OFF_BY_ONE = Candidate(
    "hand-2",
    "hand",
    "test_encode_counts_each_character",
    "def test_encode_counts_each_character():\n    assert encode_runs('aab') == [('a', 2), ('b', 1)]\n",
    ("from textutils import encode_runs",),
)
AGAIN = Candidate(
    "hand-5",
    "hand",
    "test_clamp_inside_again",
    "def test_clamp_inside_again():\n    assert clamp(3, 0, 10) == 3\n",
    ("from textutils import clamp",),
)
"""Another test, but of what the suite's test_clamp_inside covers already."""
NO_IMPORT = Candidate(
    "hand-3",
    "hand",
    "test_missing_module",
    "def test_missing_module():\n    assert no_such_module.answer() == 42\n",
    ("import no_such_module",),
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if (problem := Sandbox().check()) is not None:
        pytest.fail(problem)  # the funnel's guarantees are the sandbox's: never skip them
    root = tmp_path_factory.mktemp("testgen") / "project"
    shutil.copytree(FIXTURE, root)
    return root


@pytest.fixture(scope="module")
def jobs_run() -> list[ExecSpec]:
    return []


@pytest.fixture(scope="module")
def run(jobs_run: list[ExecSpec], tmp_path_factory: pytest.TempPathFactory) -> jobs.RunJob:
    """The local sandbox runner, noting every job it is given."""
    local = jobs.local_runner(work_root=tmp_path_factory.mktemp("jobs"))

    def run(spec: ExecSpec) -> ExecResult:
        jobs_run.append(spec)
        return local(spec)

    return run


@pytest.fixture(scope="module")
def target(project: Path) -> targets.Target:
    return targets.resolve(str(project / "textutils.py"))


@pytest.fixture(scope="module")
def engine_runs(target: targets.Target, run: jobs.RunJob) -> list[candidates.EngineRun]:
    return candidates.local_candidates(target, run, jobs.Budget.of(120))


@pytest.fixture(scope="module")
def funnel(
    target: targets.Target, run: jobs.RunJob, engine_runs: list[candidates.EngineRun]
) -> FunnelResult:
    generated = [c for r in engine_runs for c in r.candidates]
    clamp_test = next(c for c in generated if c.engine == "crosshair" and "clamp(" in c.source)
    duplicate = Candidate(
        "hand-4",
        "hand",
        "test_clamp_once_more",
        clamp_test.source.replace(f"def {clamp_test.name}(", "def test_clamp_once_more("),
        clamp_test.imports,
    )
    return Funnel(run, reruns=5, seed=7)(
        target,
        [*generated, FLAKY, OFF_BY_ONE, NO_IMPORT, duplicate, AGAIN],
        # A wall clock, not a speed bar: every test process is a sandbox of its own, and this
        # machine is shared (a load of 15 on 2 cores is seen).
        jobs.Budget.of(FUNNEL_BUDGET_S),
        candidate_dir="tests",
        suite=["tests/test_textutils.py"],
    )


def outcome(result: FunnelResult, candidate_id: str):
    return next(o for o in result.outcomes if o.candidate.id == candidate_id)


def test_a_file_targets_its_public_functions(target: targets.Target) -> None:
    assert [s.name for s in target.symbols] == ["encode_runs", "decode_runs", "clamp"]
    assert (target.module, target.relpath, target.whole_module) == (
        "textutils",
        "textutils.py",
        True,
    )


def test_a_symbol_targets_it_alone(project: Path) -> None:
    one = targets.resolve(f"{project / 'textutils.py'}::clamp")
    assert [s.name for s in one.symbols] == ["clamp"] and not one.whole_module


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing.py", "no such file"),
        ("pyproject.toml", "not a Python file"),
        ("textutils.py::_private", "no public top-level function or class '_private'"),
        ("textutils.py::nothing", "no public top-level function or class 'nothing'"),
    ],
)
def test_unusable_targets_say_why(project: Path, spec: str, message: str) -> None:
    with pytest.raises(targets.TargetError, match=message):
        targets.resolve(spec, cwd=project)


def test_packages_give_dotted_module_names(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    package = tmp_path / "src" / "shop"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "prices.py").write_text("def total(xs: list[int]) -> int:\n    return sum(xs)\n")
    target = targets.resolve(str(package / "prices.py"))
    assert (target.module, target.import_relpath, target.root) == ("shop.prices", "src", tmp_path)


def test_the_engines_write_candidates_in_the_sandbox(
    engine_runs: list[candidates.EngineRun],
) -> None:
    by_engine = {r.engine: r for r in engine_runs}
    assert set(by_engine) == {"hypothesis", "explore", "crosshair"}
    assert all(r.problem is None for r in engine_runs), [r.problem for r in engine_runs]
    ghost = {c.name: c for c in by_engine["hypothesis"].candidates}
    # The ghostwriter pairs encode/decode into a round trip: the property the bug breaks.
    assert "test_roundtrip_encode_runs_decode_runs" in ghost
    assert "@given(" in ghost["test_roundtrip_encode_runs_decode_runs"].source
    cover = by_engine["crosshair"].candidates
    assert any("assert clamp(" in c.source for c in cover)  # concrete inputs, expected values
    # The search calls clamp with the module's own numbers, and keeps the call that raises.
    explored = by_engine["explore"].candidates
    assert any("pytest.raises(ValueError)" in c.source and "clamp(" in c.source for c in explored)
    assert any("encode_runs(" in c.source and "result ==" in c.source for c in explored)
    for c in [*ghost.values(), *cover, *explored]:
        assert c.source.lstrip().startswith(("def test", "@")), c.source
        assert any("textutils" in line for line in c.imports)


def test_every_step_is_a_sandboxed_job(funnel: FunnelResult, jobs_run: list[ExecSpec]) -> None:
    # Three engines, then collect, reruns, coverage and mutants (there are redundant tests):
    # nothing ran but through the runner.
    assert len(jobs_run) == 7 and "mutate" in jobs_run[-1].argv
    assert all(spec.argv[0] == "python" and spec.timeout_s <= FUNNEL_BUDGET_S for spec in jobs_run)
    # Only what a gateway lets a job set: it refuses any other name.
    assert all(spec.env.keys() <= DEFAULT_ENV_ALLOW for spec in jobs_run)


def test_the_flaky_candidate_is_never_kept(funnel: FunnelResult) -> None:
    flaky = outcome(funnel, "hand-1")
    assert (flaky.fate, flaky.passes, flaky.runs) == (Fate.FLAKY, 3, 5)
    assert FLAKY not in funnel.kept


def test_kept_tests_passed_every_rerun_and_added_coverage(funnel: FunnelResult) -> None:
    kept = [o for o in funnel.outcomes if o.fate == Fate.KEPT]
    assert kept
    assert all(o.passes == o.runs == 5 for o in kept)
    # Each adds coverage, or kills a mutant the suite misses.
    assert all(o.adds > 0 or o.detail.startswith("kills a mutant the suite misses") for o in kept)
    assert any(o.adds > 0 for o in kept)
    report = funnel.report
    assert report.coverage_after.percent > report.coverage_before.percent
    assert report.count("kept") == len(kept)
    assert funnel.coverage_json is not None and '"textutils.py"' in funnel.coverage_json
    assert report.coverage_kept is not None and report.coverage_kept.percent > 0


def test_a_duplicate_is_dropped_before_it_runs(funnel: FunnelResult) -> None:
    duplicate = outcome(funnel, "hand-4")
    assert duplicate.fate == Fate.DUPLICATE and duplicate.runs == 0
    assert duplicate.detail.startswith("same test as crosshair-")


def test_redundant_tests_are_dropped(funnel: FunnelResult) -> None:
    again = outcome(funnel, "hand-5")
    assert (again.fate, again.passes, again.adds) == (Fate.REDUNDANT, 5, 0)
    redundant = [o for o in funnel.outcomes if o.fate == Fate.REDUNDANT]
    assert all(o.passes == 5 and o.adds == 0 for o in redundant)


def test_failing_assertions_are_possible_bugs(funnel: FunnelResult) -> None:
    bugs = {b.candidate.name: b for b in funnel.possible_bugs}
    written = bugs["test_encode_counts_each_character"]
    assert "assert [('a', 1), ('b', 0)] == [('a', 2), ('b', 1)]" in written.assertion
    assert written.input == "assert encode_runs('aab') == [('a', 2), ('b', 1)]"
    assert written.runs_failed == 5
    roundtrip = bugs["test_roundtrip_encode_runs_decode_runs"]
    assert "AssertionError" in roundtrip.assertion
    assert "text='0'" in roundtrip.input  # Hypothesis' shrunk input: one character
    assert outcome(funnel, "hand-2").fate == Fate.FAILING


def test_what_does_not_import_does_not_collect(funnel: FunnelResult) -> None:
    broken = outcome(funnel, "hand-3")
    assert broken.fate == Fate.NOT_COLLECTED
    assert "no_such_module" in broken.detail


def test_the_report_counts_every_stage(funnel: FunnelResult) -> None:
    report = funnel.report
    counts = [sum(n) for _, n in report.stages]
    assert counts == sorted(counts, reverse=True)  # a funnel: each stage a subset
    assert counts[0] == len(funnel.outcomes)
    assert counts[0] - counts[-1] == sum(n for _, n in report.dropped)
    assert dict(report.dropped)["flaky"] == 1 and dict(report.dropped)["duplicate"] == 1


def test_garbled_job_output_keeps_nothing(target: targets.Target) -> None:
    # Job output is written by the code under test: what does not parse is not believed.
    garbage = {
        name: jobs.text_file('{"nodeid": ["x"]}\nnot json\n{"collected": 3}\n[1]\n')
        for name in ["collect.jsonl", "cover.json"] + [f"runs/run{i}.jsonl" for i in range(5)]
    }

    def scribbled(spec: ExecSpec) -> ExecResult:
        return ExecResult("succeeded", 0, artifacts={a: garbage[a] for a in spec.artifacts})

    result = Funnel(scribbled)(
        target, [OFF_BY_ONE, FLAKY], jobs.Budget.of(10), candidate_dir="tests"
    )
    assert not result.kept and not result.possible_bugs
    assert {o.fate for o in result.outcomes} == {Fate.NOT_COLLECTED}
    # Collected, then nothing believable from the reruns: unverified, never kept.
    node = "tests/test_gantry_hand_2.py::test_encode_counts_each_character"
    garbage["collect.jsonl"] = jobs.text_file(json.dumps({"collected": node}) + "\n")
    result = Funnel(scribbled)(target, [OFF_BY_ONE], jobs.Budget.of(10), candidate_dir="tests")
    assert [o.fate for o in result.outcomes] == [Fate.UNVERIFIED] and not result.kept
