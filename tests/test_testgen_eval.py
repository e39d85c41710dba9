"""`gantry eval testgen` as a user runs it, on the fixture project, with the model from the
user's own settings file (the scripted Messages-API server) so that tokens are counted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fake_messages_api import FakeMessagesAPI, tool_use

from lsp_server.testgen.model_prompt import TOOL_NAME

FIXTURE = Path(__file__).parent / "data" / "testgen" / "project"
GOOD = (
    "from textutils import decode_runs\n\n\n"
    "def test_decode_two():\n    assert decode_runs([('a', 2), ('b', 1)]) == 'aab'\n"
)


@pytest.fixture
def project(tmp_path: Path, api: FakeMessagesAPI) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root)
    config = tmp_path / "config"
    (config / "gantry").mkdir(parents=True)
    (config / "gantry" / "config.toml").write_text(
        f'[[inference.endpoints]]\nname = "gpu-box"\nbase_url = "{api.url}"\n'
        'model = "test-model"\n\n[testgen]\nmodel_rounds = 1\n'
    )
    return root, {**os.environ, "XDG_CONFIG_HOME": str(config)}


def gantry(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", "eval", "testgen", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )


def test_it_reports_funnel_coverage_time_and_tokens_per_module(project, api) -> None:
    root, env = project
    api.script(tool_use(TOOL_NAME, {"tests": [{"code": GOOD}]}))
    done = gantry(root, env, "--modules", "textutils.py", "--engines", "model", "--budget", "300")
    assert done.returncode == 0, done.stderr
    assert not done.stdout.lstrip().startswith("{")  # a table unless --json
    assert "textutils.py" in done.stdout and "median line+branch coverage" in done.stdout

    api.script(tool_use(TOOL_NAME, {"tests": [{"code": GOOD}]}))
    done = gantry(
        root, env, "--modules", "textutils.py", "--engines", "model", "--budget", "300", "--json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    (module,) = result["modules"]
    assert module["module"] == "textutils.py" and module["error"] is None
    assert module["stages"] == {
        "generated": 1,
        "unique": 1,
        "collected": 1,
        "passed every rerun": 1,
        "kept": 1,
    }
    assert module["input_tokens"] == 12 and module["output_tokens"] == 7
    kept, after = module["coverage_kept"], module["coverage_after"]
    assert 0 < kept["percent"] < after["percent"] <= 100
    assert after["percent"] > module["coverage_before"]["percent"]
    assert module["seconds"] > 0 and module["budget_s"] == 300
    assert result["summary"]["median_kept_coverage"] == kept["percent"]
    assert result["summary"]["tokens"] == 19
    assert (root / "tests" / "test_textutils.py").read_text() == (
        FIXTURE / "tests" / "test_textutils.py"
    ).read_text()  # an eval writes nothing


def test_usage_errors_exit_2(project) -> None:
    root, env = project
    done = gantry(root, env, "--modules", "nowhere.py")
    assert done.returncode == 2 and "no such file: nowhere.py" in done.stderr
    done = gantry(root, env, "--modules", "textutils.py", "--budget", "0")
    assert done.returncode == 2 and "--budget must be above 0" in done.stderr
