"""Several gateways, for real: each a gateway on 127.0.0.1 (local backend, bubblewrap), one
dispatcher over a real SQLite queue routing between them by the capacity each reports.

Spread by free capacity, labels, a draining gateway, a gateway killed with SIGKILL mid-job, and
jobs waiting for a GPU without holding a worker while local jobs run at full concurrency.
Nothing here asserts speed: concurrency is counted, every wait is bounded.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest
from gateway_harness import (
    TOKEN,
    free_port,
    make_config,
    python_spec,
    sample_health,
    serve_in_thread,
    spawn_gateway,
)

from remote_exec.dispatcher import Dispatcher, DispatcherStatus
from remote_exec.execution import ExecutionClient, GatewayDraining
from remote_exec.gateway.backends.local import LocalBackend
from remote_exec.jobs import ExecSpec, Job, JobKind, JobState, Resources
from remote_exec.sandbox import Sandbox
from remote_exec.settings import DispatcherConfig, GatewayTarget

pytestmark = pytest.mark.skipif(
    Sandbox().check() is not None, reason=f"bubblewrap cannot run here: {Sandbox().check()}"
)

TOKEN_ENV = "GANTRY_TEST_GATEWAY_TOKEN"
GPU = Resources(gpus=1)


def until(predicate: Callable[[], object], timeout_s: float = 30.0, what: str = "") -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        if value := predicate():
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        time.sleep(0.02)


def target(name: str, url: str, **labels: str) -> GatewayTarget:
    return GatewayTarget(
        url=url,
        name=name,
        token_env=TOKEN_ENV,
        connect_timeout_s=0.5,
        read_timeout_s=2.0,
        labels=labels,
    )


@contextlib.contextmanager
def local_gateway(
    state: Path, *, slots: int, gpus: list[str] | None = None, drain_file: Path | None = None
) -> Iterator[str]:
    """A real gateway running `slots` jobs at once; `gpus` are device names it hands out (this
    machine has none: the jobs do not touch them)."""
    config = attrs.evolve(make_config(state), retry_after_s=1, drain_file=drain_file)
    backend = LocalBackend(Sandbox(), config.work_root, max_concurrency=slots, gpus=gpus or [])
    with serve_in_thread(config, backend) as url:
        yield url


def sleeper(seconds: float, **kwargs: object) -> ExecSpec:
    return python_spec(f"import time; time.sleep({seconds}); print('slept')", **kwargs)


class Run:
    """A started dispatcher, the statuses it published and how many times each job's result
    was recorded (the queue's `complete` answering True)."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.d = dispatcher
        self.statuses: list[DispatcherStatus] = []
        self.recorded: collections.Counter[int] = collections.Counter()
        self.moved: list[str] = []
        """Why jobs were handed back to be placed again (off a dead or draining gateway)."""

    def submit(self, key: str, spec: ExecSpec) -> Job:
        return self.d.submit(key, JobKind.EXEC, attrs.asdict(spec), resources=spec.resources)

    def done(self, job: Job, timeout_s: float = 60.0) -> Job:
        job = self.d.wait(job.id, timeout_s)
        assert job.state == JobState.DONE, (job.state, job.error)
        assert job.result["state"] == "succeeded", job.result
        return job

    def gateway(self, name: str):
        return next(g for g in self.d.status().gateways if g.name == name)


@pytest.fixture
def dispatcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Run]]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    runs: list[Run] = []

    def start(*gateways: GatewayTarget, **fields: object) -> Run:
        config = DispatcherConfig(
            queue_path=tmp_path / "queue.sqlite",
            work_root=tmp_path / "local-work",
            gateways=gateways,
            **{
                "max_concurrency": 2,
                "lease_s": 6.0,
                "retry_down_s": 0.3,
                "probe_interval_s": 0.2,
                "max_probe_interval_s": 0.4,
                "local_fallback": False,
                **fields,
            },
        )
        run = Run(Dispatcher(config))
        run.d._on_status = run.statuses.append
        complete = run.d.queue.complete

        def counted(job_id: int, owner: str, result: dict) -> bool:
            if recorded := complete(job_id, owner, result):
                run.recorded[job_id] += 1
            return recorded

        run.d.queue.complete = counted  # type: ignore[method-assign]
        release = run.d.queue.release

        def noted(job_id: int, owner: str, *, not_before: float, reason: str) -> bool:
            if reason.startswith("moved: "):
                run.moved.append(reason)
            return release(job_id, owner, not_before=not_before, reason=reason)

        run.d.queue.release = noted  # type: ignore[method-assign]
        runs.append(run)
        run.d.start()
        until(lambda: all(g.health != "unknown" for g in run.d.status().gateways))
        return run

    yield start
    for run in runs:
        run.d.stop(timeout_s=10)


def test_jobs_spread_by_free_capacity_without_holding_workers(dispatcher, tmp_path) -> None:
    """Four long jobs, two workers, gateways with 4 and 2 free slots: each job goes where most
    slots are free (4,2 -> a; 3,2 -> a; 2,2 -> b, which has fewer of ours; 2,1 -> a), so a gets
    three and b one, all running at once: no worker waits on a remote job."""
    with (
        local_gateway(tmp_path / "a", slots=4) as a_url,
        local_gateway(tmp_path / "b", slots=2) as b_url,
    ):
        run = dispatcher(target("a", a_url), target("b", b_url))
        jobs = [run.submit(f"job{i}", sleeper(3)) for i in range(4)]
        until(lambda: run.gateway("a").jobs + run.gateway("b").jobs == 4, what="all placed")
        assert (run.gateway("a").jobs, run.gateway("b").jobs) == (3, 1)
        with ExecutionClient(a_url, TOKEN) as a, ExecutionClient(b_url, TOKEN) as b:

            def active() -> list[int]:
                return [(h := c.health())["running"] + h["queued"] for c in (a, b)]

            until(lambda: active() == [3, 1], what="3 jobs running on a, 1 on b")
        done = [run.done(job) for job in jobs]
    where = collections.Counter(job.result["where"] for job in done)
    assert where == {a_url: 3, b_url: 1}
    assert all(run.recorded[job.id] == 1 and job.attempts == 0 for job in done)


def test_labels_choose_the_gateway_and_a_label_nobody_has_fails_for_good(
    dispatcher, tmp_path
) -> None:
    with (
        local_gateway(tmp_path / "h100", slots=2, gpus=["gpu0"]) as h100_url,
        local_gateway(tmp_path / "a100", slots=4, gpus=["gpu0", "gpu1"]) as a100_url,
    ):
        run = dispatcher(target("h100", h100_url, gpu="h100"), target("a100", a100_url, gpu="a100"))
        wants_h100 = Resources(gpus=1, labels={"gpu": "h100"})
        labelled = [run.submit(f"h{i}", sleeper(0.2, resources=wants_h100)) for i in range(3)]
        # The a100 box has more room, yet none of these may go there.
        assert {run.done(job).result["where"] for job in labelled} == {h100_url}

        tpu = run.submit("tpu", python_spec("1", resources=Resources(labels={"gpu": "tpu"})))
        dead = run.d.wait(tpu.id, 30)
        assert dead.state == JobState.DEAD
        assert "h100 lacks the labels gpu=tpu" in dead.error and "a100 lacks" in dead.error

        anywhere = run.done(run.submit("plain", python_spec("print(1)")))
        assert anywhere.result["where"] == a100_url  # the most free slots


def test_a_draining_gateway_gets_nothing_new_and_finishes_its_running_job(
    dispatcher, tmp_path
) -> None:
    drain = tmp_path / "a-drain"
    with (
        local_gateway(tmp_path / "a", slots=4, drain_file=drain) as a_url,
        local_gateway(tmp_path / "b", slots=2) as b_url,
    ):
        run = dispatcher(target("a", a_url), target("b", b_url))
        first = run.submit("first", sleeper(2))
        with ExecutionClient(a_url, TOKEN) as client:
            # Running, not only placed: one still queued there when a drains is moved.
            until(lambda: client.health()["running"] == 1, what="the first job running on a")

        drain.touch()
        until(lambda: run.gateway("a").health == "draining", what="a seen draining")
        assert "a draining" in run.d.status().message
        with ExecutionClient(a_url, TOKEN) as client, pytest.raises(GatewayDraining):
            client.submit("direct", sleeper(0.1))

        later = [run.submit(f"later{i}", sleeper(0.5)) for i in range(4)]
        done = [run.done(job) for job in later]
        assert {job.result["where"] for job in done} == {b_url}
        first = run.done(first)
        assert first.result["where"] == a_url and first.attempts == 0  # not moved: it ran
        assert all(run.recorded[job.id] == 1 for job in [first, *done])

        drain.unlink()  # undrained: it is offered jobs again
        until(lambda: run.gateway("a").health == "up", what="a up again")
        again = run.done(run.submit("again", sleeper(0.1)))
        assert again.result["where"] == a_url


def test_a_job_waiting_on_a_gateway_that_drains_moves_to_another(dispatcher, tmp_path) -> None:
    """Our view of a is stale (polled every 30 s): another client fills it, so our job waits
    there, queued. Then a drains: the next job sent there is refused as draining, which tells
    us; the job still queued there is cancelled there and moved to b, under the same key."""
    drain = tmp_path / "a-drain"
    with (
        local_gateway(tmp_path / "a", slots=4, drain_file=drain) as a_url,
        local_gateway(tmp_path / "b", slots=2) as b_url,
        ExecutionClient(a_url, TOKEN) as other_client,
    ):
        run = dispatcher(
            target("a", a_url), target("b", b_url), probe_interval_s=30, max_probe_interval_s=30
        )
        hogs = [other_client.submit(f"hog{i}", sleeper(4)) for i in range(4)]
        first = run.submit("first", sleeper(0.2))
        until(lambda: run.gateway("a").jobs == 1, what="first sent to a")
        until(lambda: other_client.health()["queued"] >= 1, what="first waiting behind the hogs")

        drain.touch()
        second = run.submit("second", sleeper(0.2))  # to a: 3 slots free, it believes
        done = [run.done(first), run.done(second)]
        assert {job.result["where"] for job in done} == {b_url}
        assert all(job.attempts == 0 and run.recorded[job.id] == 1 for job in done)
        assert "cancelled" not in {other_client.get(h.id).state for h in hogs}


def test_a_gateway_killed_mid_job_has_its_job_finished_on_the_other_recorded_once(
    dispatcher, tmp_path
) -> None:
    """Gateway a is a process, killed with SIGKILL while our job runs there: the job is moved
    to b under the same key and recorded once. a, restarted on its journal, does not run it
    again (it forgets jobs that were running when it died)."""
    port = free_port()
    a = spawn_gateway(tmp_path / "a", port)  # 2 slots
    a_url = f"http://127.0.0.1:{port}"
    try:
        with local_gateway(tmp_path / "b", slots=1) as b_url:
            run = dispatcher(target("a", a_url), target("b", b_url))
            spec = python_spec(
                "import time; time.sleep(2); open('out.txt', 'w').write('ran')",
                artifacts=["out.txt"],
            )
            job = run.submit("moving", spec)
            until(lambda: run.gateway("a").jobs == 1, what="the job on a")
            with ExecutionClient(a_url, TOKEN) as client:
                until(lambda: client.health()["running"] == 1, what="it runs on a")
            os.kill(a.pid, signal.SIGKILL)
            a.wait(10)

            job = run.done(job)
            assert job.result["where"] == b_url and job.attempts == 0
            assert run.recorded[job.id] == 1 and run.moved == ["moved: gateway a is down"]
            assert "down" in {s.remotes.get("a") for s in run.statuses}

            a = spawn_gateway(tmp_path / "a", port)
            until(lambda: run.gateway("a").health == "up", what="a back")
            with ExecutionClient(a_url, TOKEN) as client:
                health = client.health()
            assert health["running"] == health["queued"] == 0
            assert run.d.queue.get(job.id).result == job.result
            assert run.recorded[job.id] == 1
    finally:
        a.kill()
        a.wait(10)


def test_gpu_jobs_wait_without_holding_workers_while_local_jobs_run_at_full_concurrency(
    dispatcher, tmp_path
) -> None:
    """One gateway with one GPU and one slot, three GPU jobs, then four CPU jobs and two
    workers. The first GPU job fills the gateway; the other two wait in the queue (pending, no
    worker held) and the CPU jobs run here two at a time: local work is not delayed by them.
    (Before, one worker followed the running GPU job and the other the one queued behind it
    there: no local job ran until the GPU jobs were done.)"""
    with local_gateway(tmp_path / "gpu", slots=1, gpus=["gpu0"]) as url:
        run = dispatcher(target("gpu", url), local_fallback=True)
        gpu_jobs = [run.submit(f"gpu{i}", sleeper(2, resources=GPU)) for i in range(3)]
        until(lambda: run.gateway("gpu").jobs == 1, what="the gateway full")
        cpu_jobs = [run.submit(f"cpu{i}", sleeper(1)) for i in range(4)]

        until(lambda: run.d.status().running_locally == 2, what="two local jobs at once")
        waiting = [run.d.queue.get(job.id) for job in gpu_jobs]
        assert sorted(job.state for job in waiting).count(JobState.PENDING) >= 1
        assert any("GPU jobs wait for a gateway" in (job.error or "") for job in waiting)

        cpu_done = [run.done(job) for job in cpu_jobs]
        gpu_done = [run.done(job) for job in gpu_jobs]
    assert max(s.running_locally for s in run.statuses) == 2
    assert all(job.result["where"] == url and job.attempts == 0 for job in gpu_done)
    assert sum(job.result["where"] == "local" for job in cpu_done) >= 2
    assert all(run.recorded[job.id] == 1 for job in gpu_done + cpu_done)


def test_a_hung_gateway_stalls_neither_workers_nor_the_other_gateway(dispatcher, tmp_path) -> None:
    """Each gateway is polled (with backoff) and followed in its own thread: one that accepts
    connections and never answers is marked down and sent nothing; the other takes the work."""
    hung = threading.Event()

    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        server.settimeout(0.1)
        while not hung.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                accepted.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        with local_gateway(tmp_path / "ok", slots=2) as ok_url:
            hung_url = f"http://127.0.0.1:{server.getsockname()[1]}"
            run = dispatcher(
                target("hung", hung_url), target("ok", ok_url), max_probe_interval_s=1.0
            )
            jobs = [run.submit(f"job{i}", sleeper(0.2)) for i in range(4)]
            assert {run.done(job).result["where"] for job in jobs} == {ok_url}
            assert run.gateway("hung").health == "down"
            assert run.d.status().remotes == {"hung": "down", "ok": "up"}
    finally:
        hung.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        server.close()


CHILD = """
import sys, time, attrs
from pathlib import Path
from remote_exec.dispatcher import Dispatcher
from remote_exec.jobs import JobKind
from remote_exec.settings import DispatcherConfig, GatewayTarget
sys.path.insert(0, {harness!r})
from gateway_harness import python_spec

config = DispatcherConfig(
    queue_path=Path({queue!r}), work_root=Path({work!r}), lease_s=2.0, probe_interval_s=0.2,
    gateways=[GatewayTarget(url={url!r}, name="a", token_env={env!r})], local_fallback=False,
)
d = Dispatcher(config)
d.start()
spec = python_spec("import time; time.sleep(3); print('ran once')")
job = d.submit("orphan", JobKind.EXEC, attrs.asdict(spec))
while d.queue.get(job.id).placed != "a":
    time.sleep(0.02)
print("placed", flush=True)
time.sleep(600)
"""


def test_a_job_whose_dispatcher_died_goes_back_to_its_gateway_not_elsewhere(
    dispatcher, tmp_path
) -> None:
    """A dispatcher process sends a job to a and is killed with SIGKILL. Another, which also
    knows b (with more room), reclaims the job: it asks a again, which answers for the key
    with the job already running there; b never sees it, and a runs it once."""
    import subprocess
    import sys

    with (
        local_gateway(tmp_path / "a", slots=2) as a_url,
        local_gateway(tmp_path / "b", slots=4) as b_url,
        sample_health(a_url) as on_a,
        sample_health(b_url) as on_b,
    ):
        code = CHILD.format(
            harness=str(Path(__file__).parent),
            queue=str(tmp_path / "queue.sqlite"),
            work=str(tmp_path / "child-work"),
            url=a_url,
            env=TOKEN_ENV,
        )
        child = subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, TOKEN_ENV: TOKEN},
        )
        try:
            assert child.stdout.readline().strip() == "placed"
        finally:
            child.kill()
            child.wait(10)
        run = dispatcher(target("a", a_url), target("b", b_url))
        (orphan,) = run.d.queue.list()
        job = run.done(orphan)
        assert job.result["where"] == a_url and job.result["stdout_tail"] == "ran once\n"
        assert job.attempts == 1  # the lease that expired with the dead process
        assert run.recorded[job.id] == 1
    assert on_b and max(h["running"] + h["queued"] for h in on_b) == 0
    assert on_a and max(h["running"] + h["queued"] for h in on_a) == 1


def test_a_gateway_killed_and_restarted_twice_loses_no_job_and_records_each_once(
    dispatcher, tmp_path
) -> None:
    """Thirty short jobs over two gateways; one, a process, is killed with SIGKILL twice while
    jobs run there and restarted on its journal each time. Every job ends done, once."""
    port = free_port()
    a_url = f"http://127.0.0.1:{port}"
    a = spawn_gateway(tmp_path / "a", port)
    try:
        with local_gateway(tmp_path / "b", slots=2) as b_url:
            run = dispatcher(target("a", a_url), target("b", b_url))
            jobs = [run.submit(f"job{i}", sleeper(0.3)) for i in range(30)]
            for kill_after in (5, 15):
                until(lambda n=kill_after: sum(run.recorded.values()) >= n, timeout_s=120)
                # Running there, not only placed: a restarted gateway resumes the jobs it had
                # queued (its journal), and only those it was running must move.
                with ExecutionClient(a_url, TOKEN) as client:
                    until(lambda: client.health()["running"] > 0, timeout_s=60, what="running on a")
                os.kill(a.pid, signal.SIGKILL)
                a.wait(10)
                until(lambda: run.d.status().remotes["a"] == "down", what="a seen down")
                a = spawn_gateway(tmp_path / "a", port)
                # Seen up again before the next kill waits for jobs there: until then (its
                # probe backs off) every job goes to b, and the run may end with none on a.
                until(lambda: run.d.status().remotes["a"] == "up", timeout_s=60, what="a up")
            done = [run.done(job, timeout_s=120) for job in jobs]
    finally:
        a.kill()
        a.wait(10)
    assert all(run.recorded[job.id] == 1 for job in done)
    assert sum(run.recorded.values()) == 30
    # Moved because a was seen down, or because a restarted and no longer knew them.
    assert run.moved and all(r.startswith("moved: gateway a ") for r in run.moved), run.moved
    where = collections.Counter(job.result["where"] for job in done)
    assert set(where) <= {a_url, b_url} and where[b_url] > 0


def test_what_a_gateway_reports_is_read_strictly(tmp_path) -> None:
    """A real health answer; one from a gateway too old to say what is free (taken as full
    while it has any job); and answers that are not health at all."""
    from remote_exec.capacity import Reported

    with (
        local_gateway(tmp_path / "g", slots=3, gpus=["gpu0", "gpu1"]) as url,
        ExecutionClient(url, TOKEN) as client,
    ):
        health = client.health()
    report = Reported.from_health(health)
    assert (report.slots, report.free_slots, report.gpus, report.free_gpus) == (3, 3, 2, 2)
    assert report.max_cpus == len(os.sched_getaffinity(0)) and not report.draining

    old = {k: v for k, v in health.items() if k not in ("free", "draining")}
    assert Reported.from_health(old).free_slots == 3
    busy = Reported.from_health({**old, "running": 1, "queued": 1})
    assert (busy.free_slots, busy.free_gpus) == (1, 0)
    for bad in ({}, [], {"capacity": {"max_concurrency": "8", "gpus": 0}}, {**old, "free": {}}):
        with pytest.raises(ValueError, match="not a health answer"):
            Reported.from_health(bad)


def test_a_gateway_whose_token_cannot_be_read_gets_nothing_and_the_others_work(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    said: list[str] = []
    with local_gateway(tmp_path / "ok", slots=2) as ok_url:
        unreadable = GatewayTarget(
            url=ok_url, name="locked", token_env=None, token_file=str(tmp_path / "absent")
        )
        config = DispatcherConfig(
            queue_path=tmp_path / "queue.sqlite",
            work_root=tmp_path / "work",
            gateways=(unreadable, target("ok", ok_url)),
            local_fallback=False,
            probe_interval_s=0.2,
            retry_down_s=0.3,
        )
        d = Dispatcher(config, announce=said.append)
        d.start()
        try:
            job = d.submit("job", JobKind.EXEC, attrs.asdict(sleeper(0.1)))
            job = d.wait(job.id, 30)
            assert job.state == JobState.DONE and job.result["where"] == ok_url
            until(lambda: d.status().remotes == {"locked": "down", "ok": "up"})
        finally:
            d.stop(timeout_s=10)
    (announced,) = said
    assert announced.startswith(f"gateway locked: cannot read {tmp_path / 'absent'}")
    assert announced.endswith("that gateway gets no jobs until it is readable")


def test_cancelling_a_job_on_a_gateway_stops_it_there(dispatcher, tmp_path) -> None:
    with (
        local_gateway(tmp_path / "a", slots=2) as url,
        ExecutionClient(url, TOKEN) as client,
    ):
        run = dispatcher(target("a", url))
        job = run.submit("long", sleeper(30))
        until(lambda: client.health()["running"] == 1, what="it runs there")
        assert run.d.cancel(job.id)
        until(lambda: client.health()["running"] == 0, what="it stopped there")
        until(lambda: run.gateway("a").jobs == 0, what="its slot given back")
        assert run.d.queue.get(job.id).state == JobState.CANCELLED
        assert run.recorded[job.id] == 0
