"""The execution client's typed errors, against real sockets on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from gateway_harness import READ_ONLY_TOKEN, TOKEN, free_port, make_config, serve_in_thread

from remote_exec.execution import (
    ExecutionClient,
    GatewayBusy,
    GatewayDown,
    GatewayRejected,
    JobLost,
    RemoteJob,
)
from remote_exec.gateway.backends import Capacity
from remote_exec.jobs import ExecResult, ExecSpec


class ScriptedBackend:
    """Jobs that start and end only when the test says so."""

    name = "scripted"

    def __init__(self) -> None:
        self.events = None

    def capacity(self) -> Capacity:
        return Capacity(max_concurrency=1, gpus=0)

    def check(self, spec: ExecSpec) -> str | None:
        return None

    def submit(self, job_id: str, spec: ExecSpec, events) -> None:
        self.events = events

    def cancel(self, job_id: str) -> None:
        self.events.finished(job_id, ExecResult(state="cancelled", exit_code=None))

    def close(self) -> None:
        pass


@pytest.fixture
def scripted(tmp_path: Path):
    backend = ScriptedBackend()
    with serve_in_thread(make_config(tmp_path, max_active_per_token=1), backend) as url:
        yield url, backend


@contextmanager
def raw_server(reply: bytes | None) -> Iterator[str]:
    """A loopback port that answers every request with `reply`, or never answers (None)."""
    listener = socket.create_server(("127.0.0.1", 0))
    conns: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conns.append(conn)
            conn.recv(65536)
            if reply is not None:
                conn.sendall(reply)
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        for conn in conns:
            conn.close()


SPEC = ExecSpec(files={}, argv=["true"])


def test_refused_connection_is_gateway_down() -> None:
    with ExecutionClient(f"http://127.0.0.1:{free_port()}", TOKEN) as client:
        with pytest.raises(GatewayDown):
            client.health()
        with pytest.raises(GatewayDown):
            client.submit("k", SPEC)


def test_a_gateway_that_never_answers_is_down_after_the_read_timeout() -> None:
    with (
        raw_server(None) as url,
        ExecutionClient(url, TOKEN, read_timeout_s=0.3) as client,
        pytest.raises(GatewayDown),
    ):
        client.get("abc")


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\n<html>",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        b"garbage that is not HTTP\r\n\r\n",
    ],
)
def test_errors_and_garbage_are_gateway_down(reply: bytes) -> None:
    with (
        raw_server(reply) as url,
        ExecutionClient(url, TOKEN) as client,
        pytest.raises(GatewayDown),
    ):
        client.get("abc")


def test_rejections_are_not_retryable(scripted) -> None:
    url, _ = scripted
    for token in ("not-a-valid-token-at-all", None):  # None: no token configured
        with ExecutionClient(url, token) as client:
            with pytest.raises(GatewayRejected) as rejected:
                client.health()
            assert rejected.value.status == 401
    with ExecutionClient(url, READ_ONLY_TOKEN) as client:
        with pytest.raises(GatewayRejected) as rejected:
            client.submit("k", SPEC)
        assert rejected.value.status == 403
    with ExecutionClient(url, TOKEN) as client:
        with pytest.raises(GatewayRejected) as rejected:
            client.submit("k", ExecSpec(files={"../x": ""}, argv=["true"]))
        assert rejected.value.status == 400
        assert "'..'" in rejected.value.reason


def test_busy_carries_retry_after_and_unknown_jobs_are_lost(scripted) -> None:
    url, _ = scripted
    with ExecutionClient(url, TOKEN) as client:
        client.submit("first", SPEC)
        with pytest.raises(GatewayBusy) as busy:
            client.submit("second", SPEC)
        assert busy.value.retry_after_s == 5
        with pytest.raises(JobLost):
            client.get("0123456789abcdef01234567")


def test_wait_is_bounded_and_result_maps_the_job(scripted) -> None:
    url, backend = scripted
    with ExecutionClient(url, TOKEN) as client:
        job = client.submit("k", SPEC)
        waited = client.wait(job.id, deadline_s=0.3, poll_s=0.05)
        assert (waited.id, waited.done) == (job.id, False)
        backend.events.started(job.id)
        backend.events.output(job.id, "héllo ".encode()[:2])  # a split UTF-8 sequence
        backend.events.output(job.id, "héllo ".encode()[2:])
        backend.events.finished(
            job.id,
            ExecResult(state="failed", exit_code=3, stderr_tail="boom", artifacts={"a": "eA=="}),
        )
        assert "".join(client.logs(job.id)) == "héllo "
        done = client.wait(job.id, deadline_s=10, poll_s=0.05)
        result = client.result(done)
        assert (result.state, result.exit_code, result.stderr_tail) == ("failed", 3, "boom")
        assert result.artifacts == {"a": "eA=="}
        assert result.where == url
        assert result.duration_s >= 0


def test_cancel_returns_the_job(scripted) -> None:
    url, _ = scripted
    with ExecutionClient(url, TOKEN) as client:
        job = client.submit("k", SPEC)
        assert isinstance(client.cancel(job.id), RemoteJob)
        assert client.get(job.id).state == "cancelled"


def test_the_token_is_never_in_the_clients_repr() -> None:
    assert TOKEN not in repr(ExecutionClient("http://127.0.0.1:9", TOKEN))
