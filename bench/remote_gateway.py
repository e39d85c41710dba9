"""Gateway round trip: submit -> succeeded for `python -c pass` through the local backend (real
HTTP on 127.0.0.1, the bubblewrap sandbox), against a bare subprocess of the same.

    python bench/remote_gateway.py [--runs 20]

Medians of --runs runs; the client polls every 10 ms. Targets are shown, never asserted.
"""

from __future__ import annotations

import argparse
import functools
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from table import markdown, median_ms, row

from remote_exec.execution import ExecutionClient
from remote_exec.gateway.app import create_app
from remote_exec.gateway.backends.local import LocalBackend
from remote_exec.gateway.config import GatewayConfig, Scope, Token
from remote_exec.jobs import ExecSpec
from remote_exec.sandbox import Sandbox

TARGET_OVERHEAD_MS = 300
ARGV = [sys.executable, "-c", "pass"]


_row = functools.partial(row, "gateway")


@contextmanager
def _gateway(state: Path, token: str, sandbox: Sandbox) -> Iterator[str]:
    config = GatewayConfig(
        tokens=(Token(token, frozenset(Scope)),),
        journal_path=state / "jobs.sqlite",
        work_root=state / "work",
    )
    backend = LocalBackend(sandbox, config.work_root, max_concurrency=2, gpus=[])
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(create_app(config, backend), log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def run(runs: int = 20) -> list[dict]:
    sandbox = Sandbox()
    target = f"<= {TARGET_OVERHEAD_MS} ms"
    if (problem := sandbox.check()) is not None:
        row = _row("gateway (local backend)", "round-trip overhead", "n/a", target, False)
        return [{**row, "note": problem}]
    token = secrets.token_hex(16)
    spec = ExecSpec(files={}, argv=ARGV)
    with (
        tempfile.TemporaryDirectory(prefix="gantry-bench-") as tmp,
        _gateway(Path(tmp), token, sandbox) as url,
        ExecutionClient(url, token) as client,
    ):

        def round_trip() -> None:
            job = client.submit(secrets.token_hex(8), spec)
            job = client.wait(job.id, deadline_s=60, poll_s=0.01)
            assert job.state == "succeeded", job

        round_trip()  # warm-up: first connection, first sandbox
        gateway = median_ms(round_trip, runs)
    bare = median_ms(lambda: subprocess.run(ARGV, check=True), runs)
    overhead = gateway - bare
    return [
        _row("bare subprocess", "python -c pass (ms, median)", round(bare, 1)),
        _row("gateway (local backend)", "submit -> succeeded (ms, median)", round(gateway, 1)),
        _row(
            "gateway (local backend)",
            "round-trip overhead (ms)",
            round(overhead, 1),
            target,
            overhead <= TARGET_OVERHEAD_MS,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    rows = run(parser.parse_args().runs)
    print(markdown(rows))


if __name__ == "__main__":
    main()
