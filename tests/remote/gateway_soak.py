"""The gateway soak: client processes sharing one queue, two gateways, one of them killed with
SIGKILL and restarted at random moments. Driven by `tests/remote/test_gateway_soak.py` (short)
and `bench/soak_gateway.py` (>= 5,000 jobs).

    gateway_soak.py CONFIG_JSON      (a client process: a Dispatcher over the shared queue)

A client records a line "job_id key client" in its own file each time the queue's `complete`
returned True (one O_APPEND write: whole or absent), and exits when no job is pending or leased.
Clients never fall back to their local sandbox: every job runs on a gateway, so a killed
gateway's jobs must come back through resubmission under their key (queued ones resumed by the
restarted gateway, running ones reported lost and run again, finished ones answered from its
journal).

Every client names both gateways: jobs are placed by the free capacity each reports, and a job
on A when it dies is followed there after its restart or moved to B, under the same key.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import attrs

SOAK_TOKENS = (
    "soak-client-0-token-0123456789ab",
    "soak-client-1-token-0123456789ab",
    "soak-client-2-token-0123456789ab",
)


# -- the client process ---------------------------------------------------------------------------


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def client_main(cfg: dict[str, Any]) -> int:
    from remote_exec.dispatcher import Dispatcher
    from remote_exec.settings import DispatcherConfig, GatewayTarget

    dispatcher = Dispatcher(
        DispatcherConfig(
            queue_path=Path(cfg["queue"]),
            work_root=Path(cfg["work_root"]),
            gateways=tuple(
                GatewayTarget(
                    url=url,
                    name=f"gateway-{name}",
                    token_env=None,
                    token_file=cfg["token_file"],
                    connect_timeout_s=1.0,
                    read_timeout_s=5.0,
                )
                for name, url in cfg["gateways"].items()
            ),
            local_fallback=False,
            max_concurrency=cfg["workers"],
            lease_s=10.0,
            retry_down_s=0.3,
            probe_interval_s=0.3,
        )
    )
    complete = dispatcher.queue.complete

    def recording_complete(job_id: int, owner: str, result: dict[str, Any]) -> bool:
        done = complete(job_id, owner, result)
        if done:
            _append(
                cfg["recorded"], f"{job_id} {result.get('stdout_tail', '').strip()} {cfg['name']}"
            )
        return done

    dispatcher.queue.complete = recording_complete  # type: ignore[method-assign]
    dispatcher.start()
    stop_file = Path(cfg["stop_file"])
    try:
        while not stop_file.exists():
            counts = dispatcher.queue.counts()
            if counts["pending"] + counts["leased"] == 0:
                return 0
            time.sleep(0.3)
        return 3
    finally:
        dispatcher.stop(timeout_s=5)


# -- the harness ----------------------------------------------------------------------------------


@attrs.define
class SoakReport:
    jobs: int
    done: int = 0
    dead: int = 0
    dead_reasons: dict[str, int] = attrs.Factory(dict)
    dead_without_reason: int = 0
    unfinished: int = 0
    """Jobs neither done nor dead at the end (lost): target 0."""
    recorded_twice: int = 0
    done_not_recorded: int = 0
    wrong_results: int = 0
    """Done jobs whose output is not their own key."""
    kills: int = 0
    lost_at_restart: int = 0
    """Jobs the killed gateway found running when it restarted (reported lost, run again)."""
    resumed_at_restart: int = 0
    """Jobs it found queued (resumed from its journal)."""
    rss_kb: dict[str, list[int]] = attrs.Factory(dict)
    """Gateway -> [RSS after the first `early` jobs, RSS at the end] (B is never killed;
    A's figures are of its last life)."""
    early: int = 0
    elapsed_s: float = 0.0
    timed_out: bool = False

    @property
    def rss_growth(self) -> float:
        early, end = self.rss_kb["B"]
        return (end - early) / early if early else float("inf")  # never reached `early` jobs

    @property
    def ok(self) -> bool:
        return not (
            self.unfinished
            or self.recorded_twice
            or self.done_not_recorded
            or self.wrong_results
            or self.dead_without_reason
            or self.timed_out
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class _Gateway:
    def __init__(self, state: Path, port: int, slots: int, max_finished: int) -> None:
        self.state, self.port, self.slots, self.max_finished = state, port, slots, max_finished
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        code = (
            "import sys; from pathlib import Path; from remote_exec.gateway.serve import"
            f" run_gateway; sys.exit(run_gateway('127.0.0.1', {self.port},"
            f" Path({str(self.state / 'tokens')!r}), 'local', {self.slots},"
            f" state_dir=Path({str(self.state)!r}), max_finished={self.max_finished}))"
        )
        with open(self.state / "gateway.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=log
            )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError((self.state / "gateway.log").read_text()[-2000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("gateway did not start") from None
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def _job_payload(key: str) -> dict[str, Any]:
    return {
        "files": {},
        "argv": ["/bin/echo", key],
        "env": {},
        "timeout_s": 30.0,
        "resources": {"gpus": 0, "cpus": 1, "memory_mb": 256},
        "artifacts": [],
    }


def run_soak(
    directory: Path,
    *,
    jobs: int,
    kills: int,
    seed: int = 0,
    slots: int = 4,
    workers: int = 4,
    max_finished: int = 10_000,
    early: int = 500,
    timeout_s: float = 900.0,
    progress: Any = lambda text: None,
) -> SoakReport:
    """Run the soak in `directory`; bounded by `timeout_s` (then `timed_out` is set)."""
    from remote_exec.jobs import JobKind
    from remote_exec.queue import JobQueue

    rng = random.Random(seed)
    report = SoakReport(jobs=jobs, early=early)
    directory.mkdir(parents=True, exist_ok=True)
    gateways = {}
    for name in ("A", "B"):
        state = directory / f"gateway-{name}"
        state.mkdir(exist_ok=True)
        (state / "tokens").write_text("".join(f"{t}\n" for t in SOAK_TOKENS))
        (state / "tokens").chmod(0o600)
        gateways[name] = _Gateway(state, _free_port(), slots, max_finished)
    queue_path = directory / "queue.sqlite"
    with JobQueue(queue_path) as queue:
        for i in range(jobs):
            queue.enqueue(f"soak-{i:06d}", JobKind.EXEC, _job_payload(f"soak-{i:06d}"))
    stop_file = directory / "stop"
    clients: list[subprocess.Popen[bytes]] = []
    recorded = [directory / f"recorded-{i}.txt" for i in range(len(SOAK_TOKENS))]
    kill_at = sorted(rng.randint(jobs // 10, jobs * 9 // 10) for _ in range(kills))
    started = time.monotonic()
    try:
        for gateway in gateways.values():
            gateway.start()
        for index, token in enumerate(SOAK_TOKENS):
            token_file = directory / f"client-{index}.token"
            token_file.write_text(token)
            token_file.chmod(0o600)
            cfg = {
                "queue": str(queue_path),
                "work_root": str(directory / f"work-{index}"),
                "gateways": {name: gateway.url for name, gateway in gateways.items()},
                "token_file": str(token_file),
                "recorded": str(recorded[index]),
                "stop_file": str(stop_file),
                "workers": workers,
                "name": f"client-{index}",
            }
            with open(directory / f"client-{index}.log", "ab") as log:
                clients.append(
                    subprocess.Popen(
                        [sys.executable, __file__, json.dumps(cfg)],
                        stdout=subprocess.DEVNULL,
                        stderr=log,
                    )
                )
        deadline = started + timeout_s
        last_note = 0.0
        while any(c.poll() is None for c in clients):
            if time.monotonic() > deadline:
                report.timed_out = True
                stop_file.touch()
                break
            done = sum(_count_lines(p) for p in recorded)
            if done >= early and "B" not in report.rss_kb:
                report.rss_kb = {n: [_rss_kb(g.proc.pid)] for n, g in gateways.items()}
            if kill_at and done >= kill_at[0]:
                kill_at.pop(0)
                time.sleep(rng.uniform(0, 0.3))
                gateways["A"].kill()
                report.kills += 1
                time.sleep(rng.uniform(0, 0.5))
                gateways["A"].start()
                progress(f"killed gateway A at {done} jobs recorded; restarted")
            if time.monotonic() - last_note > 10:
                last_note = time.monotonic()
                progress(f"{done}/{jobs} recorded after {time.monotonic() - started:.0f} s")
            time.sleep(0.1)
        for client in clients:
            try:
                client.wait(30)
            except subprocess.TimeoutExpired:
                client.kill()
                client.wait()
        report.elapsed_s = time.monotonic() - started
        for name, gateway in gateways.items():
            report.rss_kb.setdefault(name, [0]).append(_rss_kb(gateway.proc.pid))
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
                client.wait()
        for gateway in gateways.values():
            gateway.stop()
    _check(report, queue_path, recorded)
    log = (gateways["A"].state / "gateway.log").read_text()
    report.lost_at_restart = _sum_logged(log, "jobs were running when the gateway stopped")
    report.resumed_at_restart = _sum_logged(log, "queued jobs resumed")
    return report


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def _sum_logged(log: str, phrase: str) -> int:
    return sum(int(line.split()[1]) for line in log.splitlines() if phrase in line)


def _check(report: SoakReport, queue_path: Path, recorded: list[Path]) -> None:
    times = Counter()
    for path in recorded:
        if path.exists():
            for line in path.read_text().splitlines():
                times[int(line.split()[0])] += 1
    report.recorded_twice = sum(1 for n in times.values() if n > 1)
    reasons: Counter[str] = Counter()
    with sqlite3.connect(queue_path) as db:
        for job_id, key, state, result, error in db.execute(
            "SELECT id, key, state, result, error FROM jobs"
        ):
            if state == "done":
                report.done += 1
                if times[job_id] == 0:
                    report.done_not_recorded += 1
                if json.loads(result).get("stdout_tail", "").strip() != key:
                    report.wrong_results += 1
            elif state == "dead":
                report.dead += 1
                if error:
                    reasons[error.split(":")[0][:80]] += 1
                else:
                    report.dead_without_reason += 1
            else:
                report.unfinished += 1
    report.dead_reasons = dict(reasons)


if __name__ == "__main__":
    sys.exit(client_main(json.loads(sys.argv[1])))
