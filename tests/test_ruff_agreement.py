"""`gantry check` says what `ruff check` says: on copies of real projects (packages installed in
the test environment) with the same configuration, the (file, line, column, rule) findings of
both are the same, to the last one."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections import Counter
from pathlib import Path

import pytest

RUFF = str(Path(sysconfig.get_path("scripts")) / "ruff")
RULES = ["E", "F", "W", "B", "I", "UP"]
"""A broad rule set, isort included: its first-party detection depends on where ruff runs."""
CONFIGS = {
    "ruff": f"[tool.ruff.lint]\nselect = {json.dumps(RULES)}\n",
    # No ruff configuration at all (as django's): ruff's defaults, relative to where it runs.
    "gantry": f'[project]\nname = "x"\n\n[tool.gantry.ruff]\nselect = {json.dumps(RULES)}\n',
}
VENV_PACKAGES = Path(".venv/lib/python3.11/site-packages")


def copy_package(package: str, into: Path) -> None:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        pytest.skip(f"{package} is not installed")
    source = Path(spec.origin).parent
    shutil.copytree(source, into / package, ignore=shutil.ignore_patterns("__pycache__"))


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(
    ("package", "config"),
    [("rich", "ruff"), ("pygls", "gantry"), ("starlette", "ruff"), ("httpx2", "gantry")],
)
def test_gantry_check_finds_what_ruff_finds(package, config, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    project = tmp_path / "project"
    copy_package(package, project)
    copy_package("attr", project / VENV_PACKAGES)  # a virtual environment, as projects have
    (project / "pyproject.toml").write_text(CONFIGS[config])
    selection = [f"--select={','.join(RULES)}"] if config == "gantry" else []
    ruff = run([RUFF, "check", "--output-format=json", "--exit-zero", *selection, "."], project)
    assert ruff.returncode == 0, ruff.stderr
    expected = Counter(
        (
            Path(os.path.relpath(item["filename"], project)).as_posix(),
            item["location"]["row"],
            item["location"]["column"],
            item["code"],
        )
        for item in json.loads(ruff.stdout)
    )
    gantry = run(
        [sys.executable, "-m", "lsp_server", "check", "--format=json", "--fail-on=never"], project
    )
    assert gantry.returncode == 0, gantry.stderr
    report = json.loads(gantry.stdout)
    found = Counter(
        (item["path"], item["line"], item["column"], item["rule"]) for item in report["findings"]
    )
    assert len(expected) > 50  # a real test: the rules find plenty in real code
    assert found - expected == Counter(), "findings ruff does not report"
    assert expected - found == Counter(), "ruff's findings that Gantry misses"
    assert report["summary"]["complete"]
