"""`gantry queue`, `gantry doctor` and `gantry gateway`, as a person runs them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remote_exec.jobs import JobKind, JobState
from remote_exec.queue import JobQueue

TOKEN = "cli-test-token-0123456789abcdef"


def gantry(
    cwd: Path, *args: str, env: dict | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lsp_server", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "pyproject.toml").write_text('[tool.gantry.execution]\nqueue = "q.db"\n')
    return ws


def test_queue_commands(workspace: Path):
    assert "No queue yet" in gantry(workspace, "queue", "list").stdout
    queue = JobQueue(workspace / "q.db")
    waiting, _ = queue.enqueue("review:a.py@3", JobKind.INFERENCE, {"messages": []})
    broken, _ = queue.enqueue("exec:tests", JobKind.EXEC, {})
    claimed = queue.claim("tester")
    queue.fail(claimed.id, "tester", "boom", permanent=True)

    listing = gantry(workspace, "queue", "list")
    assert listing.returncode == 0
    assert "1 dead" in listing.stdout and "1 pending" in listing.stdout
    assert "review:a.py@3" in listing.stdout and "(boom)" in listing.stdout

    shown = gantry(workspace, "queue", "show", str(claimed.id))
    assert '"state": "dead"' in shown.stdout and '"error": "boom"' in shown.stdout

    assert gantry(workspace, "queue", "purge").returncode == 2  # dead jobs go only when asked
    assert gantry(workspace, "queue", "show").returncode == 2
    assert gantry(workspace, "queue", "show", "999").returncode == 1

    assert gantry(workspace, "queue", "retry", str(claimed.id)).returncode == 0
    assert queue.get(claimed.id).state == JobState.PENDING
    other = waiting.id if claimed.id != waiting.id else broken.id
    assert gantry(workspace, "queue", "cancel", str(other)).returncode == 0
    assert queue.get(other).state == JobState.CANCELLED
    assert gantry(workspace, "queue", "cancel", str(other)).returncode == 1

    claimed = queue.claim("tester")
    queue.fail(claimed.id, "tester", "boom again", permanent=True)
    purged = gantry(workspace, "queue", "purge", "--dead")
    assert "Purged 1 dead job" in purged.stdout
    assert queue.get(claimed.id) is None
    queue.close()


def verdicts(report: str) -> dict[str, str]:
    """check name -> ok | warn | fail, from doctor's fixed columns."""
    return {
        line[6:28].strip(): line[:5].strip()
        for line in report.splitlines()
        if line.startswith(("ok ", "warn", "fail"))
    }


@pytest.fixture
def gateway(tmp_path: Path):
    """`gantry gateway` for real, on a loopback port."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lsp_server",
            "gateway",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--token-file",
            str(token_file),
            "--max-concurrency",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    proc.kill()
    proc.wait()


def test_doctor_reports_each_check(workspace: Path, gateway: str):
    dead_port = free_port()
    (workspace / "pyproject.toml").write_text(f"""
[[tool.gantry.inference.endpoints]]
name = "gpu"
base_url = "http://127.0.0.1:{dead_port}"
model = "m"

[tool.gantry.execution.gateway]
url = "{gateway}"
token_env = "TEST_GANTRY_TOKEN"
""")
    assert gantry(workspace, "trust").returncode == 0  # URLs and token sources need trust
    result = gantry(workspace, "doctor", env={"TEST_GANTRY_TOKEN": TOKEN})
    lines = verdicts(result.stdout)
    assert lines["ruff"] == "ok" and lines["sandbox"] == "ok" and lines["store"] == "ok"
    assert lines["settings"] == "ok"
    assert lines["gateway gateway"] == "ok"
    assert lines["endpoint gpu"] == "fail"
    assert "hint: is the model server running" in result.stdout
    assert result.returncode == 1

    wrong = gantry(workspace, "doctor", env={"TEST_GANTRY_TOKEN": "wrong-token-0123456789abcdef"})
    assert "hint: the token is not accepted" in wrong.stdout
    assert TOKEN not in wrong.stdout and "wrong-token" not in wrong.stdout


def test_doctor_all_local_is_fine(workspace: Path):
    result = gantry(workspace, "doctor")
    assert result.returncode == 0, result.stdout
    assert "no endpoints or gateway configured" in result.stdout


GATEWAY = '[tool.gantry.execution.gateway]\nurl = "http://127.0.0.1:9"\n'


@pytest.mark.parametrize(
    ("execution", "verdict"),
    [
        ("", "warn"),  # nothing runs code here: review and indexing never do
        (GATEWAY, "fail"),  # its CPU jobs fall back to this machine while it is down
        (GATEWAY + "[tool.gantry.execution]\nlocal_fallback = false\n", "warn"),
    ],
    ids=["all-local", "gateway-falling-back-here", "gateway-without-local-fallback"],
)
def test_doctor_without_bubblewrap(tmp_path: Path, execution: str, verdict: str):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "pyproject.toml").write_text(execution)
    assert gantry(workspace, "trust").returncode == 0  # a gateway URL needs trust
    no_bwrap = tmp_path / "bin"  # ruff is found beside Gantry's Python, not on PATH
    no_bwrap.mkdir()
    result = gantry(workspace, "doctor", env={"PATH": str(no_bwrap)})
    lines = verdicts(result.stdout)
    assert lines["sandbox"] == verdict, result.stdout
    assert "bubblewrap ('bwrap') was not found" in result.stdout
    if not execution:
        assert set(lines.values()) == {"ok", "warn"}, result.stdout
        assert result.returncode == 0, result.stdout


def test_gateway_refuses_a_world_readable_token_file(tmp_path: Path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o644)
    result = gantry(
        tmp_path, "gateway", "--port", str(free_port()), "--token-file", str(token_file), timeout=30
    )
    assert result.returncode == 2
    assert "token" in result.stderr.lower()


def test_doctor_names_a_store_path_holding_another_file(workspace: Path):
    (workspace / "notes.txt").write_text("mine\n")
    (workspace / "pyproject.toml").write_text('[tool.gantry]\nstore = "notes.txt"\n')
    result = gantry(workspace, "doctor")
    assert "fail  store" in result.stdout and "point `store` at another path" in result.stdout
    assert "unexpected error" not in result.stdout
    assert (workspace / "notes.txt").read_text() == "mine\n"
