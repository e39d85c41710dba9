"""The gateway over real HTTP on 127.0.0.1, running jobs through the local backend."""

from __future__ import annotations

import os
import signal
import socket
import threading
from pathlib import Path

import httpx2
import pytest
from gateway_harness import (
    OTHER_TOKEN,
    READ_ONLY_TOKEN,
    TOKEN,
    b64,
    free_port,
    make_config,
    python_spec,
    serve_in_thread,
    spawn_gateway,
)

from remote_exec.execution import ExecutionClient, GatewayBusy, GatewayDown, JobLost
from remote_exec.gateway.backends.local import LocalBackend
from remote_exec.gateway.config import TokenFileError, load_tokens
from remote_exec.jobs import ExecSpec
from remote_exec.sandbox import Sandbox

BODY_LIMIT = 64 * 1024


class CountingBackend(LocalBackend):
    """The local backend, counting the jobs it was asked to run."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.submitted: list[str] = []

    def submit(self, job_id, spec, events) -> None:
        self.submitted.append(job_id)
        super().submit(job_id, spec, events)


@pytest.fixture
def gateway(tmp_path: Path):
    config = make_config(tmp_path, max_body_bytes=BODY_LIMIT, max_active_per_token=2)
    backend = CountingBackend(Sandbox(), config.work_root, max_concurrency=4, gpus=[])
    with serve_in_thread(config, backend) as url:
        yield url, backend


@pytest.fixture
def client(gateway):
    with ExecutionClient(gateway[0], TOKEN) as c:
        yield c


def _body(**overrides: object) -> dict:
    body = {"key": "k1", "files": {"a.txt": b64("hi")}, "argv": ["true"]}
    return {**body, **overrides}


# -- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong-token-0123456789abcdef"}, 401),
        ({"Authorization": f"Basic {TOKEN}"}, 401),
        ({"Authorization": f"Bearer {TOKEN}"}, 200),
        ({"Authorization": f"Bearer {READ_ONLY_TOKEN}"}, 200),
    ],
)
def test_health_needs_a_valid_token(gateway, headers, status) -> None:
    response = httpx2.get(f"{gateway[0]}/v1/health", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_read_only_token_may_not_submit(gateway) -> None:
    response = httpx2.post(
        f"{gateway[0]}/v1/jobs",
        json=_body(),
        headers={"Authorization": f"Bearer {READ_ONLY_TOKEN}"},
    )
    assert response.status_code == 403
    assert gateway[1].submitted == []


def test_jobs_are_private_to_their_token(gateway, client) -> None:
    job = client.submit("mine", ExecSpec(files={}, argv=["true"]))
    with ExecutionClient(gateway[0], OTHER_TOKEN) as other, pytest.raises(JobLost):
        other.get(job.id)
    client.wait(job.id, deadline_s=30, poll_s=0.05)


def test_token_file_must_exist_hold_tokens_and_be_private(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    with pytest.raises(TokenFileError):
        load_tokens(path)
    path.write_text("# nothing\n")
    path.chmod(0o600)
    with pytest.raises(TokenFileError, match="no token"):
        load_tokens(path)
    path.write_text(f"{TOKEN}\n")
    path.chmod(0o644)
    with pytest.raises(TokenFileError, match="everyone"):
        load_tokens(path)


# -- what a request may carry -------------------------------------------------------------------


def test_declared_oversized_body_is_refused(gateway) -> None:
    response = httpx2.post(
        f"{gateway[0]}/v1/jobs",
        content=b"x" * (BODY_LIMIT + 1),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 413


def test_chunked_oversized_body_is_refused_while_streaming(gateway) -> None:
    """No Content-Length: the gateway counts as it reads and answers before the sender is done."""
    port = int(gateway[0].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
        )
        chunk = b"x" * 16384
        sent = 0
        # Far more than the limit is offered; the answer comes after a little over the limit.
        for _ in range(4 * BODY_LIMIT // len(chunk)):
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                break
            sent += len(chunk)
            if sent > BODY_LIMIT * 2:
                break
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413")
    assert gateway[1].submitted == []


@pytest.mark.parametrize(
    "path", ["../escape.txt", "/etc/evil", "a/../../escape.txt", "a\\..\\b", "x\0y", ""]
)
def test_bundle_paths_that_escape_are_refused(gateway, tmp_path: Path, path: str) -> None:
    response = httpx2.post(
        f"{gateway[0]}/v1/jobs",
        json=_body(files={path: b64("pwned")}),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 400
    assert gateway[1].submitted == []
    assert not (tmp_path.parent / "escape.txt").exists()
    assert not (tmp_path / "escape.txt").exists()


@pytest.mark.parametrize(
    "overrides",
    [
        {"argv": []},
        {"argv": "python -c pass"},
        {"argv": ["python", ""]},
        {"argv": ["python", "a\0b"]},
        {"argv": ["python", 3]},
        {"env": {"LD_PRELOAD": "/x.so"}},
        {"env": {"PYTHONHASHSEED": 0}},
        {"env": {"PATH": "/tmp"}},
        {"timeout_s": 0},
        {"timeout_s": -1},
        {"timeout_s": 10**9},
        {"timeout_s": "60"},
        {"timeout_s": True},
        {"resources": {"gpus": 1}},  # this gateway has none
        {"resources": {"cpus": 0}},
        {"resources": {"memory_mb": 1.5}},
        {"resources": {"disk": 1}},
        {"artifacts": ["../../etc/passwd"]},
        {"files": {"a.py": "not base64!"}},
        {"key": ""},
        {"key": "has space"},
        {"shell": True},
    ],
)
def test_invalid_specs_are_refused(gateway, overrides: dict) -> None:
    response = httpx2.post(
        f"{gateway[0]}/v1/jobs",
        json=_body(**overrides),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]
    assert gateway[1].submitted == []


def test_body_that_is_not_json_is_refused(gateway) -> None:
    response = httpx2.post(
        f"{gateway[0]}/v1/jobs", content=b"{nope", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 400


# -- running jobs -------------------------------------------------------------------------------

WRITE_ARTIFACT = """
import pathlib
pathlib.Path("out").mkdir()
pathlib.Path("out/result.txt").write_text("computed " + pathlib.Path("input.txt").read_text())
print("done")
"""


def test_job_runs_end_to_end_and_its_artifact_comes_back(client) -> None:
    spec = python_spec(WRITE_ARTIFACT, artifacts=["out/result.txt", "missing.txt"])
    spec.files["input.txt"] = b64("42")
    job = client.submit("e2e", spec)
    assert job.state in ("queued", "running")
    job = client.wait(job.id, deadline_s=60, poll_s=0.05)
    result = client.result(job)
    assert result.state == "succeeded", result
    assert result.exit_code == 0
    assert "done" in result.stdout_tail
    assert list(result.artifacts) == ["out/result.txt"]
    assert b64("computed 42") == result.artifacts["out/result.txt"]
    assert result.where == client.base_url


def test_resubmitting_a_key_returns_the_same_job_and_runs_it_once(gateway, client) -> None:
    spec = python_spec("print('once')")
    first = client.submit("same-key", spec)
    second = client.submit("same-key", spec)
    assert second.id == first.id
    client.wait(first.id, deadline_s=60, poll_s=0.05)
    third = client.submit("same-key", spec)
    assert (third.id, third.state) == (first.id, "succeeded")
    assert gateway[1].submitted == [first.id]


def test_logs_stream_while_the_job_runs(client) -> None:
    script = """
import sys, time
for i in range(3):
    print(f"line {i}", flush=True)
    time.sleep(0.3)
print("to stderr", file=sys.stderr)
"""
    job = client.submit("logs", python_spec(script))
    seen = ""
    states_at_first_output = []
    for text in client.logs(job.id):
        if not seen:
            states_at_first_output.append(client.get(job.id).state)
        seen += text
    assert "line 0\nline 1\nline 2\n" in seen
    assert "to stderr" in seen
    assert states_at_first_output == ["running"]
    assert client.get(job.id).state == "succeeded"
    # A late reader gets the whole output of a finished job.
    assert "".join(client.logs(job.id)) == seen


def test_cancel_kills_a_running_job(client) -> None:
    script = "import time\nprint('started', flush=True)\ntime.sleep(300)\n"
    job = client.submit("cancel-me", python_spec(script, timeout_s=600))
    stream = client.logs(job.id)
    seen = ""
    while "started" not in seen:  # output may arrive in several chunks
        seen += next(stream)
    client.cancel(job.id)
    assert "started" not in "".join(stream)  # the stream ends with the job, nothing repeated
    job = client.wait(job.id, deadline_s=30, poll_s=0.05)
    assert job.state == "cancelled"


def test_a_queued_job_can_be_cancelled(tmp_path: Path) -> None:
    config = make_config(tmp_path / "one")
    backend = LocalBackend(Sandbox(), config.work_root, max_concurrency=1, gpus=[])
    with serve_in_thread(config, backend) as url, ExecutionClient(url, TOKEN) as c:
        blocker = c.submit("blocker", python_spec("import time; time.sleep(300)", timeout_s=600))
        queued = c.submit("queued", python_spec("print('never')"))
        assert c.cancel(queued.id).state in ("queued", "cancelled")
        assert c.wait(queued.id, deadline_s=30, poll_s=0.05).state == "cancelled"
        c.cancel(blocker.id)
        assert c.wait(blocker.id, deadline_s=30, poll_s=0.05).state == "cancelled"


def test_a_job_over_its_timeout_is_timed_out(client) -> None:
    job = client.submit("slow", python_spec("import time; time.sleep(300)", timeout_s=1))
    job = client.wait(job.id, deadline_s=60, poll_s=0.05)
    assert job.state == "timed_out"


def test_per_token_concurrency_is_limited(gateway, client) -> None:
    sleeper = python_spec("import time; time.sleep(300)", timeout_s=600)
    jobs = [client.submit(f"busy-{i}", sleeper) for i in range(2)]
    with pytest.raises(GatewayBusy) as busy:
        client.submit("busy-2", sleeper)
    assert busy.value.retry_after_s > 0
    assert client.submit("busy-0", sleeper).id == jobs[0].id  # a known key is still answered
    with ExecutionClient(gateway[0], OTHER_TOKEN) as other:  # other tokens are not affected
        other.wait(other.submit("x", python_spec("pass")).id, deadline_s=60, poll_s=0.05)
    for job in jobs:
        client.cancel(job.id)
        client.wait(job.id, deadline_s=30, poll_s=0.05)
    client.wait(client.submit("busy-2", python_spec("pass")).id, deadline_s=60, poll_s=0.05)


def test_health_reports_capacity_and_load(gateway, client) -> None:
    health = client.health()
    assert health["backend"] == "local"
    assert health["capacity"] == {
        "max_concurrency": 4,
        "gpus": 0,
        "cpus": len(os.sched_getaffinity(0)),
        "memory_mb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20,
    }
    assert (health["running"], health["queued"]) == (0, 0)
    assert health["version"]


# -- a gateway that dies ------------------------------------------------------------------------


def test_gateway_killed_mid_job_then_restarted(tmp_path: Path) -> None:
    """Finished jobs survive a kill -9 (resubmitting answers them); unfinished ones run afresh,
    once, when resubmitted."""
    port = free_port()
    proc = spawn_gateway(tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    with ExecutionClient(url, TOKEN, read_timeout_s=5) as client:
        finished = client.submit(
            "finished", python_spec(WRITE_ARTIFACT, artifacts=["out/result.txt"])
        )
        client.submit("finished", python_spec("pass"))
        finished = client.wait(finished.id, deadline_s=60, poll_s=0.05)
        interrupted = client.submit("interrupted", python_spec("import time; time.sleep(300)"))
        while client.get(interrupted.id).state != "running":
            threading.Event().wait(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with pytest.raises(GatewayDown):
            client.get(interrupted.id)
        with pytest.raises(GatewayDown):
            client.submit("another", python_spec("pass"))

        proc = spawn_gateway(tmp_path, port)
        try:
            again = client.submit("finished", python_spec(WRITE_ARTIFACT))
            assert again == finished  # answered from the journal, not run again
            with pytest.raises(JobLost):
                client.get(interrupted.id)
            rerun = client.submit("interrupted", python_spec("print('second life')"))
            assert rerun.id != interrupted.id
            rerun = client.wait(rerun.id, deadline_s=60, poll_s=0.05)
            assert (rerun.state, rerun.stdout_tail) == ("succeeded", "second life\n")
            assert client.submit("interrupted", python_spec("pass")).id == rerun.id
        finally:
            proc.terminate()
            proc.wait(20)
