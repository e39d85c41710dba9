"""The VS Code extension's own test suite (editors/vscode: `npm test`), run from pytest.

`npm test` type-checks, bundles, runs Node's test runner (pure modules, activate() against a
fake `vscode`, the real server over stdio through vscode-jsonrpc's strict reader) and packages
the .vsix with vsce. It needs Node and `npm ci --prefix editors/vscode` beforehand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXTENSION = Path(__file__).resolve().parents[2] / "editors" / "vscode"


@pytest.mark.timeout(600)
def test_vscode_extension_npm_test(tmp_path: Path) -> None:
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.fail("node and npm are needed for the VS Code extension's tests (Node 20 or newer)")
    if not (EXTENSION / "node_modules" / ".bin").is_dir():
        pytest.fail("editors/vscode has no node_modules: run npm ci --prefix editors/vscode")
    env = {
        **os.environ,
        "GANTRY_TEST_PYTHON": sys.executable,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        [npm, "test"],
        cwd=EXTENSION,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=540,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"npm test failed ({result.returncode}) in {EXTENSION}:\n{result.stdout[-20000:]}"
        )
