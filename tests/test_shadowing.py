"""A workspace cannot shadow the server's imports. The server runs in the workspace, which may
hold its own `types.py`, `json.py` or a checkout of pygls; `python -m` would import those first.
Editors and `gantry check` start it with -P; see lsp_server/__main__.py."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from raw_lsp import RawServer

from lsp_server.analysis.indexer import POOL_MIN_FILES
from lsp_server.headless.client import SERVE_COMMAND

GANTRY = Path(sys.executable).parent / "gantry"
"""The console script: Neovim's server, VS Code's from PATH, and what people run."""
SHADOW = 'raise SystemExit("shadowed")\n'
STDLIB = [
    *("types", "enum", "typing", "logging", "queue", "signal", "socket"),  # crashed the server
    *("random", "json"),  # hung `gantry check`
    *("selectors", "inspect", "threading", "asyncio", "sqlite3", "subprocess", "weakref", "uuid"),
]
PACKAGES = ["lsp_server", "pygls", "lsprotocol", "attrs"]
"""Gantry's own package, and what a checkout of its dependencies holds at its root."""


def shadowing_workspace(root: Path, modules: Sequence[str], packages: Sequence[str] = ()) -> Path:
    """A workspace with one finding (F401 in bad.py, an error) and modules that must not run."""
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[tool.gantry.ruff]\nselect = ["F"]\n\n[tool.gantry.severity]\nF401 = "error"\n'
    )
    (root / "bad.py").write_text("import os\n")
    for name in modules:
        (root / f"{name}.py").write_text(SHADOW)
    for name in packages:
        (root / name).mkdir()
        (root / name / "__init__.py").write_text(SHADOW)
    return root


def gantry_check(workspace: Path) -> dict:
    result = subprocess.run(
        [str(GANTRY), "check", "--format", "json"],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    return json.loads(result.stdout)


def test_check_in_a_workspace_that_shadows_everything(tmp_path: Path):
    workspace = shadowing_workspace(tmp_path / "ws", STDLIB, PACKAGES)
    report = gantry_check(workspace)
    assert [(f["path"], f["rule"]) for f in report["findings"]] == [("bad.py", "F401")]
    assert report["summary"]["complete"]
    assert report["summary"]["files"] == 1 + len(STDLIB) + len(PACKAGES)


@pytest.mark.parametrize("name", ["types", "random", "json", "asyncio"])
def test_check_beside_one_stdlib_module(tmp_path: Path, name: str):
    report = gantry_check(shadowing_workspace(tmp_path / "ws", [name]))
    assert [(f["path"], f["rule"]) for f in report["findings"]] == [("bad.py", "F401")]


def _serves(command: Sequence[str], workspace: Path) -> None:
    """The server answers initialize and publishes bad.py's diagnostics, then exits cleanly."""
    raw = RawServer(workspace, command=command)
    try:
        rid = raw.request(
            "initialize", {"processId": None, "rootUri": workspace.as_uri(), "capabilities": {}}
        )
        assert "capabilities" in raw.response(rid)["result"]
        raw.notify("initialized", {})
        uri = (workspace / "bad.py").as_uri()
        document = {"uri": uri, "languageId": "python", "version": 1, "text": "import os\n"}
        raw.notify("textDocument/didOpen", {"textDocument": document})
        published = raw.wait_for(
            lambda m: (
                m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
            )
        )
        assert [d["code"] for d in published["params"]["diagnostics"]] == ["F401"]
        raw.response(raw.request("shutdown", None))
        raw.notify("exit", None)
        assert raw.close() == 0
    finally:
        raw.close()


@pytest.mark.parametrize(
    "command",
    [SERVE_COMMAND, (str(GANTRY), "serve")],
    ids=["python -P -m lsp_server serve", "gantry serve"],
)
def test_editor_commands_serve_a_workspace_that_shadows_everything(tmp_path, command):
    _serves(command, shadowing_workspace(tmp_path / "ws", STDLIB, PACKAGES))


def test_without_P_the_guard_keeps_what_runpy_has_not_imported(tmp_path: Path):
    """`python -m lsp_server serve` as anyone may type it: __main__.py takes the workspace off
    sys.path, which covers every module the interpreter has not imported by then; runpy has
    imported `types` (so -P is still needed)."""
    workspace = shadowing_workspace(tmp_path / "ws", [name for name in STDLIB if name != "types"])
    _serves([sys.executable, "-m", "lsp_server", "serve"], workspace)


def test_index_pool_workers_do_not_import_the_workspace(tmp_path: Path):
    """`gantry index` (and `gantry serve` from the console script) have no -P to pass on: the
    pool's `python -c` workers start in the workspace all the same."""
    workspace = shadowing_workspace(tmp_path / "ws", STDLIB)
    for n in range(POOL_MIN_FILES):
        (workspace / f"mod{n}.py").write_text(f"def f{n}():\n    return {n}\n")
    result = subprocess.run(
        [str(GANTRY), "index", "."],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"symbols: {POOL_MIN_FILES}" in result.stdout, result.stdout
