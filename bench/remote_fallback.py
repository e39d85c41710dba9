"""How fast the dispatcher gives up on a remote and falls back to the local sandbox.

    python bench/remote_fallback.py [--runs 20] [--hung-runs 5] [--read-timeout 1.0]

A real Dispatcher (real SQLite queue, bubblewrap sandbox) with a CPU exec job (`python -c pass`)
and a gateway that is

1. **refused** (a closed loopback port): from `submit()` to the local run starting, i.e. the
   dispatcher calling `run_spec` (instrumented with a monotonic timestamp). Measured with the
   gateway's circuit closed before each job (the first job to meet a fresh outage: it tries the
   connection, is refused, falls back) and with the circuit open (the steady state once the
   probe noticed: no connection is tried). Median of --runs each; target <= 50 ms. The sandbox
   start-up that follows is shown beside it (median of direct `run_spec` calls), no target.
2. **hung** (a socket that accepts and never answers) with the gateway's read timeout set to
   --read-timeout: from `submit()` to the local run starting, against that deadline. Median and
   max of --hung-runs, circuit closed before each; target <= deadline + 10 %.

The circuit is closed by reaching into the dispatcher's RemoteHealth (a benchmark-only shortcut)
so that each job really meets the remote rather than an already-open breaker. Since jobs are
placed by the capacity each gateway reports (remote_exec.capacity), a gateway whose last health
poll went unanswered is sent no job whatever its breaker says: after the start-up poll, every
job here falls back without a connection, and the closed/open rows measure the same decision.
Targets are shown, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
from table import markdown, row

import remote_exec.routing as routing_module
from remote_exec.dispatcher import Dispatcher
from remote_exec.jobs import ExecSpec, JobKind
from remote_exec.local_runner import run_spec
from remote_exec.sandbox import Sandbox
from remote_exec.settings import DispatcherConfig, GatewayTarget

SECTION = "fallback"
TARGET_DECISION_MS = 50.0
HUNG_SLACK = 0.10
SPEC = ExecSpec(files={}, argv=[sys.executable, "-c", "pass"])


_row = functools.partial(row, SECTION)


@contextlib.contextmanager
def _instrumented() -> Iterator[list[float]]:
    """Record time.monotonic() each time the dispatcher starts a local run."""
    starts: list[float] = []

    def timed_run_spec(*args, **kwargs):
        starts.append(time.monotonic())
        return run_spec(*args, **kwargs)

    routing_module.run_spec = timed_run_spec
    try:
        yield starts
    finally:
        routing_module.run_spec = run_spec


@contextlib.contextmanager
def _hung_port() -> Iterator[str]:
    """Accepts connections and holds them without a byte of answer."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@contextlib.contextmanager
def _dispatcher(tmp: Path, url: str, read_timeout_s: float) -> Iterator[Dispatcher]:
    config = DispatcherConfig(
        queue_path=tmp / "queue.sqlite",
        work_root=tmp / "work",
        gateways=[
            GatewayTarget(
                url=url,
                token_env=None,  # nothing answers there: no token is ever sent
                connect_timeout_s=1.0,
                read_timeout_s=read_timeout_s,
            )
        ],
        max_concurrency=1,
        probe_interval_s=3600.0,  # one probe at start, none while measuring
        retry_down_s=0.1,
    )
    d = Dispatcher(config)
    d.start()
    try:
        yield d
    finally:
        d.stop()


def _wait_probed(d: Dispatcher, timeout_s: float = 30.0) -> None:
    """Until the start-up probe has found the gateway down (it opens the circuit)."""
    deadline = time.monotonic() + timeout_s
    while d.status().remotes.get("gateway") != "down":
        if time.monotonic() > deadline:
            raise RuntimeError("the start-up probe did not mark the gateway down")
        time.sleep(0.01)


def _fallback_times(
    d: Dispatcher, starts: list[float], runs: int, prefix: str, *, close_circuit: bool
) -> list[float]:
    """Seconds from submit() to the local run starting, one per job."""
    times = []
    for i in range(runs):
        if close_circuit:
            d._health._breakers["gateway"].close()  # benchmark-only: meet the remote afresh
        seen = len(starts)
        submitted = time.monotonic()
        job = d.submit(f"{prefix}-{i}", JobKind.EXEC, attrs.asdict(SPEC))
        job = d.wait(job.id, 120)
        if job.state != "done" or job.result["where"] != "local" or len(starts) != seen + 1:
            raise RuntimeError(f"job {job.key} did not fall back: {job.state} {job.error}")
        times.append(starts[seen] - submitted)
    return times


def _sandbox_start_ms(sandbox: Sandbox, work: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = run_spec(SPEC, sandbox, work)
        times.append(time.perf_counter() - start)
        if result.state != "succeeded":
            raise RuntimeError(f"the sandbox run failed: {result}")
    return statistics.median(times) * 1000


def run(runs: int = 20, hung_runs: int = 5, read_timeout_s: float = 1.0) -> list[dict]:
    sandbox = Sandbox()
    decision_target = f"<= {TARGET_DECISION_MS:g} ms"
    if (problem := sandbox.check()) is not None:
        return [
            _row(
                "dispatcher", "refused remote -> local run", "n/a", decision_target, False, problem
            )
        ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="gantry-bench-fallback-") as tmp_name:
        tmp = Path(tmp_name)
        with _instrumented() as starts:
            with _dispatcher(tmp / "refused", _closed_port_url(), read_timeout_s) as d:
                _wait_probed(d)
                _fallback_times(d, starts, 2, "warm", close_circuit=True)  # first imports
                fresh = _fallback_times(d, starts, runs, "fresh", close_circuit=True)
                known = _fallback_times(d, starts, runs, "known", close_circuit=False)
            for label, times in (
                ("circuit closed: tries, is refused", fresh),
                ("circuit open: no connection tried", known),
            ):
                median = statistics.median(times) * 1000
                rows.append(
                    _row(
                        "dispatcher, refused gateway",
                        f"submit -> local run starts, {label} (ms, median of {len(times)})",
                        round(median, 1),
                        decision_target,
                        median <= TARGET_DECISION_MS,
                    )
                )
            rows.append(
                _row(
                    "bwrap sandbox",
                    "then: run_spec of python -c pass (ms, median, for context)",
                    round(_sandbox_start_ms(sandbox, tmp / "direct", runs), 1),
                )
            )
            with _hung_port() as url, _dispatcher(tmp / "hung", url, read_timeout_s) as d:
                _wait_probed(d, timeout_s=read_timeout_s * 5 + 10)
                hung = _fallback_times(d, starts, hung_runs, "hung", close_circuit=True)
        limit = read_timeout_s * (1 + HUNG_SLACK)
        median, worst = statistics.median(hung), max(hung)
        rows.append(
            _row(
                "dispatcher, hung gateway",
                f"submit -> local run starts, read timeout {read_timeout_s:g} s "
                f"(s, median / max of {len(hung)})",
                f"{median:.3f} / {worst:.3f}",
                f"<= {limit:.2f} s (deadline + 10 %)",
                worst <= limit,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--hung-runs", type=int, default=5)
    parser.add_argument("--read-timeout", type=float, default=1.0)
    args = parser.parse_args()
    rows = run(args.runs, args.hung_runs, args.read_timeout)
    print(markdown(rows))


if __name__ == "__main__":
    main()
