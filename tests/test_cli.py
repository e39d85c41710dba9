"""Ctrl-C, as a terminal sends it (SIGINT to the whole foreground process group) and as a
program may (to `gantry` alone): one line, exit 130, nothing left running."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

GANTRY = Path(sys.executable).parent / "gantry"
SLOW_RUFF = """#!/bin/sh
# ruff, slowly: Ctrl-C comes while Gantry waits for it. It answers once its caller is gone (or
# after a minute), as a real ruff would finish its run, not long after.
if [ "$1" != "--version" ]; then
  touch {marker}
  i=0
  while kill -0 $PPID 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
fi
exec {ruff} "$@"
"""


@pytest.fixture
def busy_workspace(tmp_path: Path) -> tuple[Path, Path]:
    """A workspace whose ruff is slow to answer, and the file that says it has been asked."""
    import shutil

    marker = tmp_path / "ruff-started"
    ruff = tmp_path / "slow-ruff"
    ruff.write_text(SLOW_RUFF.format(marker=marker, ruff=shutil.which("ruff")))
    ruff.chmod(0o755)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "pyproject.toml").write_text(f'[tool.gantry.ruff]\npath = "{ruff}"\n')
    (workspace / "app.py").write_text("import os\n")
    return workspace, marker


@pytest.fixture
def start():
    """Start `gantry ARGS` in a process group of its own, as a terminal runs a foreground job;
    whatever is left of the group is killed afterwards, so a failure cleans up too."""
    groups = []

    def run(args: list[str], cwd: Path, **kwargs) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [str(GANTRY), *args],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            **kwargs,
        )
        groups.append(proc.pid)
        return proc

    yield run
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def _wait_for(condition, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert proc.poll() is None, f"gantry ended before {what}: {proc.stderr.read().decode()}"
        assert time.monotonic() < deadline, f"no {what}"
        time.sleep(0.02)


def _group(pgid: int) -> dict[int, bytes]:
    """pid -> command line of the processes still running in a group (not the zombies)."""
    members = {}
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(fields[2]) == pgid and fields[0] not in "ZX":
                members[int(entry.name)] = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):  # not a process, or one that just ended
            continue
    return members


def _ignores_sigint(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    ignored = int(re.search(r"^SigIgn:\s*([0-9a-f]+)", status, re.MULTILINE)[1], 16)
    return bool(ignored & 1 << (signal.SIGINT - 1))


def _interrupt(proc: subprocess.Popen[bytes], group: bool) -> None:
    """Ctrl-C: to the whole group, as a terminal sends it, or to `gantry` alone."""
    if group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    stderr = err.decode()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["gantry: interrupted"], stderr


def _assert_group_gone(pgid: int) -> None:
    deadline = time.monotonic() + 30
    while (left := _group(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"left running: {left}"


@pytest.mark.parametrize("group", [True, False], ids=["terminal", "gantry-alone"])
def test_ctrl_c_stops_check(busy_workspace, start, group: bool):
    workspace, marker = busy_workspace
    proc = start(["check", "--trust-workspace"], workspace)
    _wait_for(marker.exists, proc, "review")
    _interrupt(proc, group)
    if group:  # alone, its server sees its input close: that is not this test's subject
        _assert_group_gone(proc.pid)


def _frame(message: dict) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def test_ctrl_c_stops_serve(busy_workspace, start):
    workspace, marker = busy_workspace
    proc = start(["serve", "--trust-workspace"], workspace, stdin=subprocess.PIPE)
    root = workspace.as_uri()
    document = {"uri": f"{root}/app.py", "languageId": "python", "version": 1}
    proc.stdin.write(
        _frame({"id": 1, "method": "initialize", "params": {"rootUri": root, "capabilities": {}}})
        + _frame({"method": "initialized", "params": {}})
        + _frame(
            {
                "method": "textDocument/didOpen",
                "params": {"textDocument": {**document, "text": "import os\n"}},
            }
        )
    )
    proc.stdin.flush()
    _wait_for(marker.exists, proc, "review")
    _interrupt(proc, group=True)
    _assert_group_gone(proc.pid)


def test_ctrl_c_stops_serve_with_nowhere_to_say_so(tmp_path: Path):
    """A terminal's Ctrl-C reaches `gantry check` and its server together; when check has left
    first, the server's stderr is a pipe nobody reads, and the server must still leave."""
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [str(GANTRY), "serve"],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=write_end,
    )
    os.close(write_end)
    try:
        proc.stdin.write(_frame({"id": 1, "method": "initialize", "params": {"capabilities": {}}}))
        proc.stdin.flush()
        answer = b""
        while b"capabilities" not in answer:  # answered: its Ctrl-C handling is in place
            chunk = proc.stdout.read1(65536)
            assert chunk, "the server ended before answering initialize"
            answer += chunk
        os.close(read_end)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        proc.kill()
        proc.wait()


def test_ctrl_c_stops_index_and_its_pool(tmp_path: Path, start):
    """The indexer's pool workers are in the terminal's process group too: they leave Ctrl-C
    to their parent, whose end is theirs."""
    from lsp_server.analysis.indexer import POOL_MIN_FILES, POOL_WORKERS

    workspace = tmp_path / "ws"
    workspace.mkdir()
    for n in range(20 * POOL_MIN_FILES):
        body = "".join(f"def f{n}_{i}(x):\n    return x + {i}\n\n\n" for i in range(20))
        (workspace / f"mod{n}.py").write_text(body)
    proc = start(["index", "."], workspace)

    def pool_running() -> bool:
        """The workers and multiprocessing's resource tracker, each past the start-up in which
        Ctrl-C still reached it (the window a worker's initializer closes)."""
        helpers = [pid for pid, cmd in _group(proc.pid).items() if b"multiprocessing" in cmd]
        return len(helpers) == POOL_WORKERS + 1 and all(map(_ignores_sigint, helpers))

    _wait_for(pool_running, proc, "indexing pool")
    _interrupt(proc, group=True)
    _assert_group_gone(proc.pid)
