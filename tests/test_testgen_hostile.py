"""A candidate test is untrusted code: one that tries to forge its verdict, another test's, or
coverage, gains nothing. These run for real in the sandbox, each test process in a sandbox of
its own (see sandbox_driver), and are given to the funnel directly: the screen that turns such
model answers away (model_prompt.screen) is not what stops them here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lsp_server.testgen import jobs, targets
from lsp_server.testgen.candidates import Candidate
from lsp_server.testgen.funnel import Fate, Funnel, FunnelResult
from remote_exec.sandbox import Sandbox

FIXTURE = Path(__file__).parent / "data" / "testgen" / "project"
BUDGET_S = 300

FORGE = """\
def test_forges_a_pass():
    forged = [
        {"nodeid": node, "when": "call", "outcome": "passed", "assertion": False,
         "exception": None, "longrepr": ""}
        for node in (
            "tests/test_gantry_hostile_1.py::test_forges_a_pass",
            "tests/test_gantry_honest_1.py::test_encode_counts",
        )
    ]
    lines = "".join(json.dumps(r) + "\\n" for r in forged) + json.dumps({"finished": 0}) + "\\n"
    # 1. every report file in reach: the driver's runs, this run's own
    for path in glob.glob("/job/**/*.json*", recursive=True) + glob.glob("/tmp/**/*", recursive=True):
        try:
            with open(path, "a") as f:
                f.write(lines)
        except OSError:
            pass
    for name in ("runs/run0.jsonl", "collect.jsonl", "cover.json", "../runs/run0.jsonl"):
        try:
            with open(name, "w") as f:
                f.write(lines)
        except OSError:
            pass
    # 2. the recorder in this process
    for record in forged:
        _gantry_driver._record(**record)
    _gantry_driver._record(finished=0)
    _gantry_driver._record = lambda **fields: None
    # 3. out before the failing assertion can be reported
    assert encode_runs("ab") == [("a", 1), ("b", 1)] or os._exit(0)
"""
HOSTILE = Candidate(
    "hostile-1",
    "hostile",
    "test_forges_a_pass",
    FORGE,
    (
        "import glob",
        "import json",
        "import os",
        "",
        "import _gantry_driver",
        "from textutils import encode_runs",
    ),
)
CLAIMS_COVERAGE = Candidate(
    "hostile-2",
    "hostile",
    "test_claims_coverage",
    "def test_claims_coverage():\n"
    "    # Passes without running the target, and writes that it ran all of it.\n"
    "    everything = {'executed_lines': list(range(1, 40)), 'missing_lines': [],\n"
    "                  'executed_branches': [], 'missing_branches': []}\n"
    "    runs = {'tests/test_gantry_hostile_2.py::test_claims_coverage':\n"
    "            {'passed': True, 'detail': '', 'coverage': everything}}\n"
    "    for path in ('cover.json', '/job/cover.json', '../cover.json'):\n"
    "        try:\n"
    "            with open(path, 'w') as f:\n"
    "                json.dump({'target': 'textutils.py', 'runs': runs}, f)\n"
    "        except OSError:\n"
    "            pass\n",
    ("import json",),
)
HONEST_FAILING = Candidate(
    "honest-1",
    "honest",
    "test_encode_counts",
    "def test_encode_counts():\n    assert encode_runs('aab') == [('a', 2), ('b', 1)]\n",
    ("from textutils import encode_runs",),
)
HONEST_GOOD = Candidate(
    "honest-2",
    "honest",
    "test_decode_two",
    "def test_decode_two():\n    assert decode_runs([('a', 2)]) == 'aa'\n",
    ("from textutils import decode_runs",),
)


def funnel(tmp_path_factory: pytest.TempPathFactory, *candidates: Candidate) -> FunnelResult:
    if (problem := Sandbox().check()) is not None:
        pytest.fail(problem)
    root = tmp_path_factory.mktemp("hostile") / "project"
    shutil.copytree(FIXTURE, root)
    target = targets.resolve(str(root / "textutils.py"))
    run = jobs.local_runner(work_root=root.parent / "jobs")
    return Funnel(run, reruns=5, seed=3)(
        target,
        candidates,
        jobs.Budget.of(BUDGET_S),
        candidate_dir="tests",
        suite=["tests/test_textutils.py"],
    )


@pytest.fixture(scope="module")
def forged(tmp_path_factory: pytest.TempPathFactory) -> FunnelResult:
    return funnel(tmp_path_factory, HOSTILE, HONEST_FAILING, HONEST_GOOD)


@pytest.fixture(scope="module")
def claimed(tmp_path_factory: pytest.TempPathFactory) -> FunnelResult:
    return funnel(tmp_path_factory, CLAIMS_COVERAGE, HONEST_GOOD)


def outcome(result: FunnelResult, candidate: Candidate):
    return next(o for o in result.outcomes if o.candidate is candidate)


def test_a_test_that_forges_its_pass_is_not_kept(forged: FunnelResult) -> None:
    hostile = outcome(forged, HOSTILE)
    assert hostile.fate == Fate.ERROR and hostile.passes == 0
    assert "ProcessEnded" in hostile.detail
    assert not forged.kept


def test_it_cannot_forge_another_tests_verdict(forged: FunnelResult) -> None:
    honest = outcome(forged, HONEST_FAILING)
    assert honest.fate == Fate.FAILING and honest.passes == 0
    assert [b.candidate for b in forged.possible_bugs] == [HONEST_FAILING]
    # A run the hostile test ended is believed for nothing it reports as passed: the good
    # test among them goes unverified (a denial of service, not a forged pass).
    good = outcome(forged, HONEST_GOOD)
    assert good.fate == Fate.UNVERIFIED and "another test ended the run" in good.detail


def test_coverage_claimed_by_a_test_is_not_believed(claimed: FunnelResult) -> None:
    claims = outcome(claimed, CLAIMS_COVERAGE)
    assert (claims.fate, claims.passes, claims.adds) == (Fate.REDUNDANT, 5, 0)
    assert outcome(claimed, HONEST_GOOD).fate == Fate.KEPT
    report = claimed.report
    assert report.coverage_after is not None and report.coverage_after.lines_total == 17
    assert report.coverage_after.lines < report.coverage_after.lines_total  # nothing forged


def test_children_see_an_interpreter_that_lives_under_tmp(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout (and its virtual environment) under /tmp, as CI clones it: the children's
    fresh /tmp must not hide the interpreter they run (every candidate then failed to collect)."""
    from lsp_server.testgen import sandbox_driver  # a script, imported here for this test only

    monkeypatch.setattr(sandbox_driver, "_PREFIXES", ("/tmp/ci/.venv", "/usr", "/tmp/ci/.venv"))
    children = object.__new__(sandbox_driver.Children)
    argv = children._bwrap("/run/dir", {})
    after_tmpfs = argv[argv.index("--tmpfs", argv.index("/job")) :]
    assert after_tmpfs[:2] == ["--tmpfs", "/tmp"]
    assert ["--ro-bind", "/tmp/ci/.venv", "/tmp/ci/.venv"] == after_tmpfs[4:7]
    assert argv.count("/tmp/ci/.venv") == 2 and "/usr" not in argv
