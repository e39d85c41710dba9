"""`gantry testgen` as a user runs it: usage errors exit 2, a run exits 0 whatever it kept,
--write merges the kept tests into the project's test file, which then passes under pytest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_server.cli import main
from lsp_server.store import Store

FIXTURE = Path(__file__).parent / "data" / "testgen" / "project"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root)
    return root


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere.py"], "nowhere.py: no such file"),
        (["pyproject.toml"], "not a Python file"),
        (["textutils.py::missing"], "no public top-level function or class 'missing'"),
    ],
)
def test_unusable_targets_exit_2(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, args, message
) -> None:
    monkeypatch.chdir(project)
    assert main(["testgen", *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "args", [["textutils.py", "--engines", "gpt"], ["textutils.py", "--budget", "0"], []]
)
def test_bad_arguments_exit_2(project: Path, monkeypatch: pytest.MonkeyPatch, args) -> None:
    monkeypatch.chdir(project)
    with pytest.raises(SystemExit) as exited:
        main(["testgen", *args])
    assert exited.value.code == 2


def test_write_merges_kept_tests_and_says_only_local_engines_ran(project: Path) -> None:
    before = (project / "tests" / "test_textutils.py").read_text()
    with (project / "pyproject.toml").open("a") as pyproject:
        pyproject.write('\n[tool.gantry]\nstore = ".gantry/store.db"\n')
    Store.open(project / ".gantry" / "store.db").close()  # the project has a store: the run goes in
    done = subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", "testgen", "textutils.py::clamp", "--write"]
        + ["--json", "--engines", "all", "--budget", "120"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=240,
        env=os.environ,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    skipped = "model candidates were skipped: no model is configured"
    assert any(note.startswith(skipped) for note in result["notes"]), result["notes"]
    assert result["symbols"] == ["clamp"] and result["written"]
    kept = result["funnel"]["stages"]["kept"]
    assert sum(kept.values()) >= 1
    written = (project / "tests" / "test_textutils.py").read_text()
    assert written.startswith("import pytest\n\nfrom textutils import clamp")  # theirs first
    assert written.count("import pytest") == 1 and written.count("from textutils import") == 1
    assert written.count("def test_clamp_inside(") == 1
    assert before.split("\n\n\n", 1)[1].strip() in written  # its own tests, untouched
    # The merged file is a working test file: its own tests and the kept ones pass.
    check = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(project)},
        check=False,
    )
    assert check.returncode == 0, check.stdout
    assert f"{2 + sum(kept.values())} passed" in check.stdout
    with Store.open(project / ".gantry" / "store.db") as store:
        [run] = store.testgen_runs()
    assert (run.path, run.symbols, run.kept) == ("textutils.py", ("clamp",), sum(kept.values()))
    assert json.loads(run.report)["stages"] == [
        [stage, list(counts.values())] for stage, counts in result["funnel"]["stages"].items()
    ]


def test_without_write_it_prints_and_writes_nothing(project: Path) -> None:
    # A budget too small to start the engines: it still runs, says so, and exits 0.
    done = subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", "testgen", "textutils.py::decode_runs"]
        + ["--budget", "5"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == [
        "note: hypothesis: not run: the budget left the engines 0.0 s",
        "note: explore: not run: the budget left the engines 0.0 s",
        "note: crosshair: not run: the budget left the engines 0.0 s",
    ]
    assert "# no test was kept" in lines
    assert "# funnel: 5 reruns in random order, inside the existing suite" in done.stdout
    assert (project / "tests" / "test_textutils.py").read_text() == (
        FIXTURE / "tests" / "test_textutils.py"
    ).read_text()
