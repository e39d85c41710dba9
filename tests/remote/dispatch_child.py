"""The process the dispatcher crash test kills: it owns a Dispatcher over a shared queue file.

    dispatch_child.py CONFIG_JSON

CONFIG_JSON holds: queue, work_root, acked, completed, events (file paths), run, seed, gateway
(base URL: the real gateway or a closed port), token_file, jobs (new keys to enqueue), job_sleep_s
(the longest a job sleeps), max_attempts, lease_s, drain (true for the last, unkilled child) and
drain_timeout_s.

Promises, each a line appended only after the call that makes it true returned, so a kill leaves a
line whole or absent: ACKED gets a key once `Dispatcher.submit` returned (the job is durable);
COMPLETED gets "job_id key where" once the queue's `complete` returned True. EVENTS gets
"local KEY" when a local run starts (informational: runs counted, not promised).

Markers on stdout (one line each, flushed) tell the test when to kill: `ready`, `enqueued KEY`,
`local KEY` (a local sandbox run begins), `submitted KEY` (the gateway accepted the job, and the
queue has not yet recorded a result), `recorded ID KEY` (complete returned True), and in drain
mode `drained {json}`.

The harness both the test and `bench/remote_crash.py` drive lives at the end of this module
(`run_crash`): its imports are lazy, so the child does not pay for them.

Start-up must stay cheap (it is paid at every kill point): nothing here imports anthropic.
"""

from __future__ import annotations

import base64
import json
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import attrs

from remote_exec import routing as routing_module
from remote_exec.dispatcher import Dispatcher
from remote_exec.jobs import ExecSpec, JobKind, JobState
from remote_exec.settings import DispatcherConfig, GatewayTarget

JOB_SCRIPT = """\
import sys, time
key, sleep_s = sys.argv[1], float(sys.argv[2])
time.sleep(sleep_s)
with open("out.txt", "w") as f:
    f.write(key)
print("ran", key)
"""

_print_lock = threading.Lock()


def _marker(text: str) -> None:
    with _print_lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def _append(path: str, line: str) -> None:
    # One write() of one short line with O_APPEND: a kill leaves it whole or absent.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def job_spec(key: str, sleep_s: float) -> dict[str, Any]:
    """The payload of a job that sleeps, then writes its key to the artifact out.txt."""
    spec = ExecSpec(
        files={"job.py": base64.b64encode(JOB_SCRIPT.encode()).decode()},
        argv=[sys.executable, "-S", "job.py", key, f"{sleep_s:.3f}"],
        timeout_s=30.0,
        artifacts=["out.txt"],
    )
    return {
        "files": spec.files,
        "argv": spec.argv,
        "env": {},
        "timeout_s": spec.timeout_s,
        "resources": {"gpus": 0, "cpus": 1, "memory_mb": 512},
        "artifacts": spec.artifacts,
    }


def make_dispatcher(cfg: dict[str, Any]) -> Dispatcher:
    lease_s = float(cfg["lease_s"])
    config = DispatcherConfig(
        queue_path=Path(cfg["queue"]),
        work_root=Path(cfg["work_root"]),
        gateways=[
            GatewayTarget(
                url=cfg["gateway"],
                token_file=cfg["token_file"],
                connect_timeout_s=1.0,
                read_timeout_s=5.0,
            )
        ],
        local_fallback=True,
        max_concurrency=2,
        lease_s=lease_s,
        retry_down_s=0.2,
        probe_interval_s=0.2,
    )
    dispatcher = Dispatcher(config)
    _instrument(dispatcher, cfg)
    return dispatcher


def _instrument(dispatcher: Dispatcher, cfg: dict[str, Any]) -> None:
    """Hooks around the queue, the gateway client and the local runner, leaving the
    dispatcher's API and code as they are."""
    queue_complete = dispatcher.queue.complete

    def complete(job_id: int, owner: str, result: dict[str, Any]) -> bool:
        done = queue_complete(job_id, owner, result)
        if done:
            key = dispatcher.queue.get(job_id).key
            _append(cfg["completed"], f"{job_id} {key} {result.get('where', '?')}")
            _marker(f"recorded {job_id} {key}")
        return done

    dispatcher.queue.complete = complete  # type: ignore[method-assign]

    (follower,) = dispatcher._router.followers.values()
    gateway = follower.client
    gateway_submit = gateway.submit

    def submit(key: str, spec: ExecSpec):
        remote = gateway_submit(key, spec)
        _marker(f"submitted {key}")
        return remote

    gateway.submit = submit  # type: ignore[method-assign]

    run_spec = routing_module.run_spec

    def local_run(spec: ExecSpec, *args: Any, **kwargs: Any):
        key = spec.argv[-2]
        _append(cfg["events"], f"local {key}")
        _marker(f"local {key}")
        return run_spec(spec, *args, **kwargs)

    routing_module.run_spec = local_run


def main(cfg: dict[str, Any]) -> int:
    rng = random.Random(cfg["seed"])
    run = int(cfg["run"])
    dispatcher = make_dispatcher(cfg)
    _marker("ready")
    dispatcher.start()
    # The previous run's keys again (a producer that crashed before its acknowledgements would
    # resubmit them: idempotent), then this run's new ones, in a burst.
    keys = [f"r{run - 1}-{i}" for i in range(cfg["jobs"]) if run > 0] if not cfg["drain"] else []
    keys += [f"r{run}-{i}" for i in range(cfg["jobs"])] if not cfg["drain"] else []
    for key in keys:
        dispatcher.submit(
            key,
            JobKind.EXEC,
            job_spec(key, rng.uniform(0.0, cfg["job_sleep_s"])),
            max_attempts=cfg["max_attempts"],
        )
        _append(cfg["acked"], key)
        _marker(f"enqueued {key}")
    if not cfg["drain"]:
        while True:  # work until killed
            time.sleep(1)
    deadline = time.monotonic() + cfg["drain_timeout_s"]
    while time.monotonic() < deadline:
        counts = dispatcher.queue.counts()
        if counts[JobState.PENDING] + counts[JobState.LEASED] == 0:
            break
        time.sleep(0.1)
    dispatcher.stop()
    _marker("drained " + json.dumps(dispatcher.queue.counts()))
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))


# -- the harness: the parent's side ----------------------------------------------------------


@attrs.define
class CrashReport:
    """What a crash run found. `violations()` lists every broken promise (empty: all kept)."""

    kill_points: int = 0
    kills_by_mode: dict[str, int] = attrs.Factory(dict)
    kills_remote_in_flight: int = 0
    """Kills that landed after a `submitted` marker and before that job's `recorded`."""
    kills_local_in_flight: int = 0
    """Kills that landed while a local sandbox run was under way."""
    markers_missed: int = 0
    """Points where the awaited marker did not come in time (killed anyway)."""
    acked: int = 0
    lost: list[str] = attrs.Factory(list)
    """Acknowledged keys missing from the queue, or not DONE/DEAD after the drain."""
    done: int = 0
    dead: list[str] = attrs.Factory(list)
    """Keys DEAD because kills used up their attempts (lease expired at the last one)."""
    unexplained_dead: list[str] = attrs.Factory(list)
    wrong_results: list[str] = attrs.Factory(list)
    """DONE jobs whose result is not their own job's successful run."""
    completions: int = 0
    double_completions: list[int] = attrs.Factory(list)
    completed_not_done: list[int] = attrs.Factory(list)
    remote_accepted: int = 0
    """Jobs the gateway accepted (201) and ran."""
    duplicate_remote: list[str] = attrs.Factory(list)
    """Keys the gateway accepted, or journaled, more than once."""
    duplicate_remote_finished: list[str] = attrs.Factory(list)
    remote_resubmissions: int = 0
    """Submissions answered from the journal (a key already known): idempotency at work."""
    local_runs: int = 0
    rerun_after_kill: int = 0
    """Keys run more than once in all (locally and/or remotely): a kill mid-run repeats it."""
    integrity: str = ""
    drain_counts: dict[str, int] = attrs.Factory(dict)
    elapsed_s: float = 0.0

    def violations(self) -> list[str]:
        found = []
        if self.lost:
            found.append(f"{len(self.lost)} acknowledged jobs lost or stuck: {self.lost[:5]}")
        if self.unexplained_dead:
            found.append(f"DEAD without running out of attempts: {self.unexplained_dead[:5]}")
        if self.wrong_results:
            found.append(f"wrong results: {self.wrong_results[:5]}")
        if self.double_completions:
            found.append(f"completed twice: {self.double_completions[:5]}")
        if self.completed_not_done:
            found.append(f"completed but not DONE: {self.completed_not_done[:5]}")
        if self.duplicate_remote:
            found.append(f"duplicate remote submissions: {self.duplicate_remote[:5]}")
        if self.duplicate_remote_finished:
            found.append(f"finished twice on the gateway: {self.duplicate_remote_finished[:5]}")
        if self.integrity != "ok":
            found.append(f"queue integrity_check: {self.integrity}")
        return found


class _Child:
    """A child process and the markers it printed, read without ever blocking unbounded."""

    def __init__(self, cfg: dict[str, Any], stderr_path: Path) -> None:
        import selectors
        import subprocess

        with open(stderr_path, "ab") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, json.dumps(cfg)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        self._fd = self.proc.stdout.fileno()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._fd, selectors.EVENT_READ)
        self._buf = b""
        self._eof = False
        self.seen: dict[str, int] = {}
        self.remote_in_flight: set[str] = set()
        self.local_in_flight: set[str] = set()
        self.submitted: list[str] = []
        self.drained: dict[str, int] | None = None

    def wait_for(self, marker: str, count: int, timeout_s: float) -> bool:
        """Until `count` `marker` lines came (True), or the timeout or EOF (False)."""
        deadline = time.monotonic() + timeout_s
        while self.seen.get(marker, 0) < count:
            left = deadline - time.monotonic()
            if left <= 0 or self._eof:
                return False
            self._read(left)
        return True

    def _read(self, timeout_s: float) -> None:
        if not self._selector.select(timeout_s):
            return
        data = os.read(self._fd, 65536)
        if not data:
            self._eof = True
            return
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            marker, _, rest = line.decode().partition(" ")
            self.seen[marker] = self.seen.get(marker, 0) + 1
            if marker == "submitted":
                self.remote_in_flight.add(rest)
                self.submitted.append(rest)
            elif marker == "local":
                self.local_in_flight.add(rest)
            elif marker == "recorded":
                key = rest.split()[1]
                self.remote_in_flight.discard(key)
                self.local_in_flight.discard(key)
            elif marker == "drained":
                self.drained = json.loads(rest)

    def kill(self) -> bool:
        """SIGKILL; True if it was alive (a kill point). Reads what it printed before dying."""
        import signal

        alive = self.proc.poll() is None
        if alive:
            self.proc.send_signal(signal.SIGKILL)
        self.close()
        return alive

    def close(self, timeout_s: float = 30.0) -> None:
        self.proc.wait(timeout_s)
        deadline = time.monotonic() + timeout_s
        while not self._eof and time.monotonic() < deadline:
            self._read(deadline - time.monotonic())
        self._selector.close()
        self.proc.stdout.close()


def run_crash(
    workdir: Path,
    *,
    kill_points: int = 200,
    seed: int = 20240602,
    jobs_per_child: int = 2,
    job_sleep_s: float = 0.3,
    max_attempts: int = 6,
    lease_s: float = 1.0,
    marker_timeout_s: float = 10.0,
    drain_timeout_s: float = 120.0,
    progress: Any = None,
) -> CrashReport:
    """Kill children owning a Dispatcher at `kill_points` seeded-random moments against a real
    gateway (local backend, bubblewrap) on 127.0.0.1, drain with a last child, check promises."""
    import collections
    import re
    import signal
    import sqlite3
    import subprocess

    from gateway_harness import TOKEN, free_port, spawn_gateway

    from remote_exec.queue import JobQueue

    started = time.monotonic()
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    state = workdir / "gateway"
    files = {name: workdir / name for name in ("acked", "completed", "events")}
    for path in files.values():
        path.touch()
    child_log = workdir / "children.log"
    token_file = workdir / "client-token"
    token_file.write_text(TOKEN)
    port, closed_port = free_port(), free_port()
    gateway = spawn_gateway(state, port)
    real_url, closed_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{closed_port}"
    report = CrashReport()

    def cfg(run: int, url: str, drain: bool) -> dict[str, Any]:
        return {
            "queue": str(workdir / "queue.db"),
            "work_root": str(workdir / "work"),
            **{name: str(path) for name, path in files.items()},
            "run": run,
            "seed": seed * 100_003 + run,
            "gateway": url,
            "token_file": str(token_file),
            "jobs": jobs_per_child,
            "job_sleep_s": job_sleep_s,
            "max_attempts": max_attempts,
            "lease_s": lease_s,
            "drain": drain,
            "drain_timeout_s": drain_timeout_s,
        }

    try:
        run = submits = 0
        while report.kill_points < kill_points:
            roll = rng.random()
            mode = (
                "start" if roll < 0.1 else "enqueue" if roll < 0.3
                else "local" if roll < 0.65 else "remote"
            )  # fmt: skip
            url = {"local": closed_url, "remote": real_url}.get(mode) or rng.choice(
                (real_url, closed_url)
            )
            child = _Child(cfg(run, url, drain=False), child_log)
            hit = True
            if mode == "start":  # imports, opening the queue, schema, workers starting
                time.sleep(rng.uniform(0.0, 0.3))
            elif mode == "enqueue":  # in the burst: between a commit and its acknowledgement
                burst = 2 * jobs_per_child if run else jobs_per_child
                hit = child.wait_for("enqueued", rng.randint(0, burst - 1), marker_timeout_s)
                time.sleep(rng.uniform(0.0, 0.005))
            elif mode == "local":  # while a job runs in the local sandbox
                hit = child.wait_for("local", rng.randint(1, 2), marker_timeout_s)
                time.sleep(rng.uniform(0.0, job_sleep_s))
            else:  # right after the gateway accepted a job, before the queue recorded it
                hit = child.wait_for("submitted", rng.randint(1, 2), marker_timeout_s)
                if rng.random() < 0.5:
                    time.sleep(rng.uniform(0.0, 0.15))
            alive = child.kill()
            submits += len(child.submitted)
            if alive:
                report.kill_points += 1
                report.kills_by_mode[mode] = report.kills_by_mode.get(mode, 0) + 1
                report.markers_missed += not hit
                report.kills_remote_in_flight += bool(child.remote_in_flight)
                report.kills_local_in_flight += bool(child.local_in_flight)
            run += 1
            if progress is not None and run % 50 == 0:
                progress(f"{report.kill_points} kill points, {time.monotonic() - started:.0f} s")

        # Drain: a last child, against the real gateway, runs everything still due.
        drainer = _Child(cfg(run, real_url, drain=True), child_log)
        drainer.wait_for("drained", 1, drain_timeout_s + 30)
        drainer.close()
        submits += len(drainer.submitted)
        report.drain_counts = drainer.drained or {}
    finally:
        gateway.send_signal(signal.SIGTERM)
        try:
            gateway.wait(20)
        except subprocess.TimeoutExpired:
            gateway.kill()
            gateway.wait()

    # -- the promises ------------------------------------------------------------------------
    conn = sqlite3.connect(workdir / "queue.db")
    report.integrity = ", ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
    conn.close()

    acked = set(files["acked"].read_text().split())
    report.acked = len(acked)
    with JobQueue(workdir / "queue.db") as queue:
        jobs = {job.key: job for job in queue.list(limit=10**7)}
    by_id = {job.id: job for job in jobs.values()}
    for key in sorted(acked):
        job = jobs.get(key)
        if job is None or job.state not in (JobState.DONE, JobState.DEAD):
            report.lost.append(key if job is None else f"{key}:{job.state}")
    for job in jobs.values():
        if job.state == JobState.DONE:
            report.done += 1
            result = job.result or {}
            artifact = (result.get("artifacts") or {}).get("out.txt", "")
            if result.get("state") != "succeeded" or base64.b64decode(artifact) != job.key.encode():
                report.wrong_results.append(job.key)
        elif job.state == JobState.DEAD:
            exhausted = job.attempts >= job.max_attempts
            if exhausted and (job.error or "").startswith("lease expired"):
                report.dead.append(job.key)
            else:
                report.unexplained_dead.append(f"{job.key}: {job.error}")

    completions = [int(line.split()[0]) for line in files["completed"].read_text().splitlines()]
    report.completions = len(completions)
    counted = collections.Counter(completions)
    report.double_completions = sorted(i for i, n in counted.items() if n > 1)
    report.completed_not_done = sorted(
        i for i in counted if i not in by_id or by_id[i].state != JobState.DONE
    )

    # The gateway: its log says every job it accepted (201), its journal every job it kept.
    accepted = collections.Counter(
        re.findall(r"accepted \(key (\S+), token", (state / "gateway.log").read_text())
    )
    report.remote_accepted = sum(accepted.values())
    report.remote_resubmissions = submits - report.remote_accepted
    journal = sqlite3.connect(state / "jobs.sqlite")
    rows = journal.execute("SELECT key, state FROM jobs").fetchall()
    journal.close()
    journaled = collections.Counter(key for key, _ in rows)
    finished = collections.Counter(
        key for key, st in rows if st in ("succeeded", "failed", "cancelled", "timed_out")
    )
    report.duplicate_remote = sorted(
        k for k in set(accepted) | set(journaled) if accepted[k] > 1 or journaled[k] > 1
    )
    report.duplicate_remote_finished = sorted(k for k, n in finished.items() if n > 1)
    local = collections.Counter(
        line.split()[1] for line in files["events"].read_text().splitlines() if line
    )
    report.local_runs = sum(local.values())
    report.rerun_after_kill = sum(
        1 for k in set(local) | set(accepted) if local[k] + accepted[k] > 1
    )
    report.elapsed_s = time.monotonic() - started
    return report
