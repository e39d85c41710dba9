"""The funnel's second way to keep a test, for real: a candidate that adds no coverage is kept
when it kills a mutant of the target that the suite lets pass, found by running the suite and
then each candidate alone on every mutant, each in a nested sandbox of its own."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lsp_server.testgen import jobs, mutation, targets
from lsp_server.testgen.candidates import Candidate
from lsp_server.testgen.funnel import Fate, Funnel
from lsp_server.testgen.sandbox_mutants import mutants
from remote_exec.sandbox import Sandbox

MODULE = """
def is_adult(age: int) -> bool:
    return age >= 18


def label(age: int) -> str:
    if is_adult(age) and age < 65:
        return "adult"
    return "other"
"""
SUITE = """
from ages import is_adult, label


def test_ages():
    assert is_adult(30)
    assert not is_adult(5)
    assert label(30) == "adult"
    assert label(70) == "other"
"""


def candidate(n: int, name: str, body: str) -> Candidate:
    source = f"def {name}():\n    {body}\n"
    return Candidate(f"hand-{n}", "hand", name, source, ("from ages import is_adult, label",))


BOUNDARY = candidate(1, "test_eighteen_is_adult", "assert is_adult(18) is True")
"""Adds no coverage, and kills `>= -> >` and `18 -> 19`, which the suite lets pass."""
LOOSE = candidate(2, "test_forty_is_adult", "assert is_adult(40)")
"""Adds no coverage and kills nothing the suite does not."""


def test_mutants_are_one_token_changes_on_the_lines_asked() -> None:
    found = dict(mutants(textwrap.dedent(MODULE), {3}, limit=10))
    assert set(found) == {"line 3: >= -> >", "line 3: 18 -> 19"}
    assert "return age > 18" in found["line 3: >= -> >"]
    on_label = dict(mutants(textwrap.dedent(MODULE), {7}, limit=10))
    assert set(on_label) == {"line 7: and -> or", "line 7: < -> <=", "line 7: 65 -> 66"}


def test_a_scribbled_report_kills_nothing() -> None:
    asked = ["t.py::test_a"]
    assert mutation.kills("not json", asked) == {}
    forged = '{"mutants": [{"mutant": "x", "suite": "failed", "killed_by": "t.py::test_a"},'
    forged += ' {"mutant": "y", "suite": "passed", "killed_by": "t.py::test_other"}]}'
    assert mutation.kills(forged, asked) == {}


def test_a_test_that_pins_a_boundary_is_kept(tmp_path: Path) -> None:
    if (problem := Sandbox().check()) is not None:
        pytest.fail(problem)
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "ages.py").write_text(textwrap.dedent(MODULE))
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_ages.py").write_text(textwrap.dedent(SUITE))
    target = targets.resolve(str(tmp_path / "ages.py::is_adult"))
    run = jobs.local_runner(work_root=tmp_path / "jobs")
    result = Funnel(run, reruns=2)(
        target,
        [BOUNDARY, LOOSE],
        jobs.Budget.of(180),
        candidate_dir="tests",
        suite=["tests/test_ages.py"],
    )
    fates = {o.candidate.id: o for o in result.outcomes}
    assert fates["hand-1"].fate == Fate.KEPT, fates["hand-1"]
    assert fates["hand-1"].adds == 0
    # Both mutants of line 3 move the boundary, and the suite misses both.
    assert fates["hand-1"].detail.startswith("kills a mutant the suite misses (line 3: ")
    assert fates["hand-2"].fate == Fate.REDUNDANT, fates["hand-2"]
    assert result.kept == (BOUNDARY,)
