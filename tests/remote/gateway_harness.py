"""Real gateways for tests: uvicorn on 127.0.0.1 in a thread, or as a process to kill -9."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import attrs
import uvicorn

from remote_exec.gateway.app import create_app
from remote_exec.gateway.backends import Backend
from remote_exec.gateway.config import GatewayConfig, Limits, Token, load_tokens
from remote_exec.jobs import ExecSpec

TOKEN = "t0ken-for-tests-0123456789abcdef"
READ_ONLY_TOKEN = "read-only-token-0123456789abcdef"
OTHER_TOKEN = "another-tenant-0123456789abcdef"


def write_token_file(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tokens"
    path.write_text(f"{TOKEN}\n{READ_ONLY_TOKEN} read\n{OTHER_TOKEN}  # second tenant\n")
    path.chmod(0o600)
    return path


def make_config(state: Path, **limits: object) -> GatewayConfig:
    return GatewayConfig(
        tokens=load_tokens(write_token_file(state)),
        journal_path=state / "jobs.sqlite",
        work_root=state / "work",
        limits=attrs.evolve(Limits(), **limits),
    )


def token_of(config: GatewayConfig, secret: str) -> Token:
    return next(t for t in config.tokens if t.secret == secret)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def python_spec(script: str, **kwargs: object) -> ExecSpec:
    """A job that runs `script` with the gateway's Python (unbuffered, so output streams)."""
    return ExecSpec(files={"job.py": b64(script)}, argv=[sys.executable, "-u", "job.py"], **kwargs)


@contextmanager
def serve_in_thread(config: GatewayConfig, backend: Backend, port: int = 0) -> Iterator[str]:
    """The gateway on a loopback port (ephemeral unless given); yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(config, backend), log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_gateway(state: Path, port: int, **options: int) -> subprocess.Popen[bytes]:
    """`run_gateway` in its own process (local backend, more keyword `options`), ready when this
    returns."""
    code = (
        "import sys; from pathlib import Path; from remote_exec.gateway.serve import run_gateway; "
        f"sys.exit(run_gateway('127.0.0.1', {port}, Path({str(state / 'tokens')!r}), 'local', 2,"
        f" state_dir=Path({str(state)!r}), **{options!r}))"
    )
    write_token_file(state)
    with open(state / "gateway.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 20
    while True:
        assert proc.poll() is None, (state / "gateway.log").read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            assert time.monotonic() < deadline, "gateway process did not start"
            time.sleep(0.05)


@contextmanager
def sample_health(url: str) -> Iterator[list[dict]]:
    """The gateway's /v1/health, read every 20 ms in a thread while the block runs."""
    from remote_exec.execution import ExecutionClient

    seen: list[dict] = []
    stop = threading.Event()

    def sample() -> None:
        with ExecutionClient(url, TOKEN) as client:
            while not stop.wait(0.02):
                with suppress(Exception):
                    seen.append(client.health())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(10)
