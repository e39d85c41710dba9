"""A server that dies or loses its editor while it indexes leaves no process behind: its pool
workers and multiprocessing's helpers end with it (read from /proc: Linux only)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from raw_lsp import RawServer

from lsp_server.analysis.indexer import POOL_WORKERS
from lsp_server.config import Settings, store_path
from lsp_server.store import Store

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

PACKAGES, MODULES = 30, 100
MODULE = '''"""Generated module {n}."""


class Shape{n}:
    def __init__(self, size: int) -> None:
        self.size = size

    def area(self) -> int:
        return self.size * {n}

'''
FUNCTION = "def helper_{n}_{i}(value):\n    return Shape{n}(value).area() + {i}\n\n\n"


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()  # the name may hold spaces
    except OSError:
        return None
    return fields[0], int(fields[1]), int(fields[19])


def _descendants(root: int) -> dict[int, int]:
    """pid -> start time (which tells a reused pid apart) of every process below `root`."""
    children: dict[int, list[int]] = {}
    started: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            children.setdefault(stat[1], []).append(int(entry))
            started[int(entry)] = stat[2]
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = started[child]
            todo.append(child)
    return found


def _alive(processes: dict[int, int]) -> dict[int, str]:
    """pid -> command line of those still running (a zombie has finished)."""
    survivors = {}
    for pid, started in processes.items():
        stat = _stat(pid)
        if stat is not None and stat[2] == started and stat[0] not in "ZX":
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                survivors[pid] = f.read().replace(b"\0", b" ").decode()
    return survivors


@pytest.fixture
def indexing_server(tmp_path: Path):
    """A server in the middle of indexing a few thousand files, with its pool running."""
    workspace = tmp_path / "workspace"
    for package in range(PACKAGES):
        directory = workspace / f"pkg{package}"
        directory.mkdir(parents=True)
        for module in range(MODULES):
            n = package * MODULES + module
            body = "".join(FUNCTION.format(n=n, i=i) for i in range(20))
            (directory / f"mod{module}.py").write_text(MODULE.format(n=n) + body)
    raw = RawServer(workspace)
    rid = raw.request(
        "initialize", {"processId": None, "rootUri": workspace.as_uri(), "capabilities": {}}
    )
    raw.response(rid)
    raw.notify("initialized", {})
    deadline = time.monotonic() + 60
    # The pool's workers, and the resource tracker that multiprocessing starts with them.
    while len(_descendants(raw.proc.pid)) < POOL_WORKERS + 1:
        assert time.monotonic() < deadline, "the indexer's pool never started"
        assert raw.proc.poll() is None, "the server exited"
        time.sleep(0.02)
    yield raw, workspace
    raw.proc.kill()
    raw.close()


def _assert_all_gone(processes: dict[int, int]) -> None:
    deadline = time.monotonic() + 30
    while (survivors := _alive(processes)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in survivors:  # a failed run still cleans up after itself
        os.kill(pid, signal.SIGKILL)
    assert not survivors, "left behind:\n" + "\n".join(f"{p}: {c}" for p, c in survivors.items())


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=lambda s: s.name)
def test_a_killed_server_leaves_no_process_behind(indexing_server, signum):
    raw, _ = indexing_server
    helpers = _descendants(raw.proc.pid)
    raw.proc.send_signal(signum)
    raw.proc.wait(timeout=30)
    if signum == signal.SIGTERM:  # handled: the pool was shut down, then the server left
        assert raw.proc.returncode == 128 + signal.SIGTERM
    _assert_all_gone(helpers)


def test_a_server_whose_editor_went_away_stops_indexing_and_exits(indexing_server):
    raw, workspace = indexing_server
    helpers = _descendants(raw.proc.pid)
    raw.proc.stdin.close()  # as when the editor crashes
    raw.proc.wait(timeout=30)
    _assert_all_gone(helpers)
    with Store.open(store_path(workspace, Settings())) as store:
        assert len(store.file_states()) < PACKAGES * MODULES  # it did not finish first


def test_without_a_parent_death_signal_a_worker_watches_its_parent():
    watch = (
        "import sys\nfrom lsp_server.analysis.indexer import _watch_parent\n"
        "print('watching', flush=True)\n_watch_parent(int(sys.argv[1]))\n"
    )
    parent_code = (
        "import os, subprocess, sys\n"
        f"child = subprocess.Popen([sys.executable, '-c', {watch!r}, str(os.getpid())])\n"
        "print(child.pid, flush=True)\nchild.wait()\n"
    )
    with subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE) as parent:
        child = int(parent.stdout.readline())
        assert parent.stdout.readline() == b"watching\n"
        watcher = {child: _stat(child)[2]}
        parent.kill()
    _assert_all_gone(watcher)
