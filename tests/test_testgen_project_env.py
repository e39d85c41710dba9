"""A project's own installed packages reach its tests: the virtual environment it keeps in its
root is bound read-only into the local sandbox, for the engines and for every nested pytest,
unless it leads outside the project or was made for another Python."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from lsp_server.testgen import candidates, jobs, project_env, targets
from lsp_server.testgen.funnel import Fate, Funnel
from remote_exec.sandbox import Sandbox

VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"
USES = """
import fancylib


def quadruple(x: int) -> int:
    if x < 0:
        raise ValueError("negative")
    return fancylib.double(fancylib.double(x))
"""


def venv(root: Path, name: str = ".venv", version: str = VERSION) -> Path:
    (root / name).mkdir(parents=True)
    (root / name / "pyvenv.cfg").write_text("home = /usr/bin\n")
    site = root / name / "lib" / version / "site-packages"
    (site / "fancylib").mkdir(parents=True)
    (site / "fancylib" / "__init__.py").write_text("def double(x):\n    return 2 * x\n")
    return site


def test_a_venv_in_the_project_is_found(tmp_path: Path) -> None:
    assert project_env.find_env(tmp_path) == project_env.ProjectEnv(None)
    site = venv(tmp_path, "venv")
    assert project_env.find_env(tmp_path) == project_env.ProjectEnv(site.resolve())


def test_a_venv_leading_outside_the_project_binds_nothing(tmp_path: Path) -> None:
    outside, project = tmp_path / "home", tmp_path / "project"
    venv(outside)
    project.mkdir()
    os.symlink(outside / ".venv", project / ".venv")
    found = project_env.find_env(project)
    assert found.site is None and "outside the project" in found.note
    # Its site-packages alone linked out: the same.
    (project / ".venv").unlink()
    (project / ".venv" / "lib" / VERSION).mkdir(parents=True)
    (project / ".venv" / "pyvenv.cfg").write_text("")
    os.symlink(
        outside / ".venv" / "lib" / VERSION / "site-packages",
        project / ".venv" / "lib" / VERSION / "site-packages",
    )
    assert project_env.find_env(project).site is None


def test_a_venv_for_another_python_is_not_used(tmp_path: Path) -> None:
    venv(tmp_path, version="python3.9")
    found = project_env.find_env(tmp_path)
    assert found.site is None and "python3.9" in found.note and VERSION in found.note


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if (problem := Sandbox().check()) is not None:
        pytest.fail(problem)
    root = tmp_path_factory.mktemp("uses")
    (root / "pyproject.toml").write_text("")
    (root / "tests").mkdir()
    (root / "uses.py").write_text(USES)
    venv(root)
    return root


def test_the_engines_and_every_test_process_import_the_project_packages(
    project: Path, tmp_path: Path
) -> None:
    target = targets.resolve(str(project / "uses.py"))
    assert target.project_env.site == (project / ".venv" / "lib" / VERSION / "site-packages")
    run = jobs.local_runner(work_root=tmp_path / "jobs")
    found = candidates.explore(target, run, 20.0, jobs.project_bundle(target))
    assert found.problem is None, found.problem
    # The search imported uses (and so fancylib) and saw what quadruple returns.
    assert any("result == " in c.source and "quadruple(" in c.source for c in found.candidates)
    result = Funnel(run, reruns=2)(
        target, found.candidates, jobs.Budget.of(120), candidate_dir="tests"
    )
    assert result.kept, [(o.fate, o.detail) for o in result.outcomes]
    assert not any(o.fate == Fate.NOT_COLLECTED for o in result.outcomes)


def test_the_cli_says_why_a_venv_is_not_used(tmp_path: Path) -> None:
    import subprocess

    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "plain.py").write_text("def inc(x: int) -> int:\n    return x + 1\n")
    venv(tmp_path, version="python3.9")
    done = subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", "testgen", "plain.py", "--budget", "5"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"note: .venv is for python3.9, the jobs run {VERSION}" in done.stdout
