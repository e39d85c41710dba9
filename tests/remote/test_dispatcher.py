"""The dispatcher end to end with real parts: the scripted Messages API and a real gateway on
127.0.0.1, the real bubblewrap sandbox for local fallback, a real SQLite queue.

Faults are real too: refused ports (nothing listens), a socket that accepts and never answers,
a gateway that turns clients away (429), a remote that comes up later on the very port the
dispatcher was given. Timings in the configs are short so the suite stays quick; nothing here
asserts speed, only behaviour (every wait is bounded).
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest
from fake_messages_api import FakeMessagesAPI, malformed, rate_limited, spend_limit, text
from gateway_harness import (
    TOKEN,
    free_port,
    make_config,
    python_spec,
    sample_health,
    serve_in_thread,
)

from remote_exec import inference
from remote_exec.dispatcher import Dispatcher, DispatcherStatus
from remote_exec.execution import ExecutionClient
from remote_exec.gateway.backends.local import LocalBackend
from remote_exec.jobs import ExecSpec, Job, JobKind, JobState, Resources
from remote_exec.sandbox import Sandbox
from remote_exec.settings import DispatcherConfig, Endpoint, GatewayTarget

pytestmark = pytest.mark.skipif(
    Sandbox().check() is not None, reason=f"bubblewrap cannot run here: {Sandbox().check()}"
)

PROMPT = inference.InferenceRequest([{"role": "user", "content": "Review this."}])
GPU = Resources(gpus=1)
READ_TIMEOUT_S = 1.0
TOKEN_ENV = "GANTRY_TEST_GATEWAY_TOKEN"


# -- helpers ----------------------------------------------------------------------------------


def until(predicate: Callable[[], object], timeout_s: float = 20.0, what: str = "") -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        if value := predicate():
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        time.sleep(0.02)


def endpoint(name: str, url: str, **fields: object) -> Endpoint:
    return Endpoint(
        name=name, base_url=url, model="m", connect_timeout_s=0.5, read_timeout_s=2.0, **fields
    )


def gateway_target(url: str) -> GatewayTarget:
    return GatewayTarget(
        url=url, token_env=TOKEN_ENV, connect_timeout_s=0.5, read_timeout_s=READ_TIMEOUT_S
    )


def refused_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def exec_payload(spec: ExecSpec) -> dict:
    return attrs.asdict(spec)


def artifact(job: Job, path: str) -> str:
    return base64.b64decode(job.result["artifacts"][path]).decode()


class Run:
    """A started dispatcher and the status events it published."""

    def __init__(self, dispatcher: Dispatcher, statuses: list[DispatcherStatus]) -> None:
        self.d, self.statuses = dispatcher, statuses

    def states(self) -> list[str]:
        return [s.state for s in list(self.statuses)]

    def job(self, job_id: int) -> Job:
        job = self.d.queue.get(job_id)
        assert job is not None
        return job

    def done(self, job: Job, timeout_s: float = 30.0) -> Job:
        job = self.d.wait(job.id, timeout_s)
        assert job.state == JobState.DONE, (job.state, job.error)
        return job


@pytest.fixture
def dispatcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Run]]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)  # the gateway's token, read as a user passes it
    runs: list[Dispatcher] = []

    def start(**fields: object) -> Run:
        statuses: list[DispatcherStatus] = []
        config = DispatcherConfig(
            queue_path=tmp_path / "queue.sqlite",
            work_root=tmp_path / "local-work",
            **{
                "max_concurrency": 2,
                "lease_s": 6.0,
                "retry_down_s": 0.3,
                "probe_interval_s": 0.2,
                **fields,
            },
        )
        d = Dispatcher(config, on_status=statuses.append)
        runs.append(d)
        d.start()
        return Run(d, statuses)

    yield start
    for d in runs:
        d.stop(timeout_s=10)


@pytest.fixture
def fake_api() -> Iterator[FakeMessagesAPI]:
    with FakeMessagesAPI() as api:
        yield api


@contextlib.contextmanager
def gateway(
    state: Path,
    *,
    gpus: list[str] | None = None,
    port: int = 0,
    slots: int = 8,
    drain_file: Path | None = None,
    **limits: object,
) -> Iterator[str]:
    """A real gateway (local backend, bubblewrap) on loopback running `slots` jobs at once;
    `gpus` are device names it hands out (this machine has none: the jobs do not touch them)."""
    config = make_config(state, **limits)
    config = attrs.evolve(config, retry_after_s=1, drain_file=drain_file)
    backend = LocalBackend(Sandbox(), config.work_root, max_concurrency=slots, gpus=gpus or [])
    with serve_in_thread(config, backend, port=port) as url:
        yield url


class HungRemote:
    """A port that accepts connections and never answers on them; counts the connections
    open at once (a client that gives up closes its end)."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self.accepted = self.open = self.peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn = self._server.accept()[0]
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self.accepted += 1
                self.open += 1
                self.peak = max(self.peak, self.open)
            thread = threading.Thread(target=self._hold, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _hold(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        with conn:
            while not self._stop.is_set():
                try:
                    if not conn.recv(65536):
                        break  # the client gave up
                except TimeoutError:
                    continue
                except OSError:
                    break
        with self._lock:
            self.open -= 1

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self._server.close()


@contextlib.contextmanager
def hung_remote() -> Iterator[HungRemote]:
    remote = HungRemote()
    try:
        yield remote
    finally:
        remote.close()


# -- inference --------------------------------------------------------------------------------


def test_inference_job_completes_with_the_endpoints_answer(dispatcher, fake_api) -> None:
    fake_api.script(text("LGTM", input_tokens=21, output_tokens=3))
    run = dispatcher(endpoints=(endpoint("gpu-box", fake_api.url),))
    job = run.d.submit("review:a.py@1", JobKind.INFERENCE, PROMPT.to_body())
    job = run.done(job)
    result = inference.InferenceResult.from_dict(job.result)
    assert (result.endpoint, result.model, result.text) == ("gpu-box", "m", "LGTM")
    assert job.result["usage"] == {"input_tokens": 21, "output_tokens": 3}
    assert job.result["latency_s"] >= 0
    assert fake_api.requests[-1].body["messages"] == PROMPT.messages
    assert run.d.submit("review:a.py@1", JobKind.INFERENCE, PROMPT.to_body()).id == job.id


def test_subscribers_hear_of_the_end_of_a_job_once(dispatcher, fake_api) -> None:
    fake_api.script(text("first"), text("second"))
    run = dispatcher(endpoints=(endpoint("gpu-box", fake_api.url),))
    heard: list[Job] = []
    changes: list[str] = []
    job = run.d.submit("review:b.py@1", JobKind.INFERENCE, PROMPT.to_body())
    run.d.subscribe(job.id, heard.append, on_change=lambda job: changes.append(job.state))
    run.d.subscribe(job.id, heard.append)
    run.d.subscribe(job.id, heard.append)()  # unsubscribed at once: never called
    until(lambda: len(heard) == 2, what="both callbacks")
    assert [j.state for j in heard] == [JobState.DONE, JobState.DONE]
    assert changes[-1] == JobState.DONE and len(changes) == len(set(changes))
    done = run.done(job)
    run.d.subscribe(done.id, heard.append)  # already ended: told at once
    until(lambda: len(heard) == 3, what="the late subscriber")


def test_inference_falls_through_a_refused_endpoint(dispatcher, fake_api) -> None:
    chain = (endpoint("gpu-box", refused_url()), endpoint("backup", fake_api.url))
    run = dispatcher(endpoints=chain)
    job = run.done(run.d.submit("k", JobKind.INFERENCE, PROMPT.to_body()))
    assert job.result["endpoint"] == "backup"
    assert job.attempts == 0
    until(lambda: run.d.status().remotes == {"gpu-box": "down", "backup": "up"})
    assert run.d.status().state == "degraded"


def test_rate_limit_waits_for_retry_after_without_using_an_attempt(dispatcher, fake_api) -> None:
    fake_api.script(rate_limited(retry_after=2))
    run = dispatcher(endpoints=(endpoint("gpu-box", fake_api.url),))
    submitted = time.time()
    job = run.d.submit("k", JobKind.INFERENCE, PROMPT.to_body())
    waiting = until(
        lambda: (j := run.job(job.id)).state == JobState.PENDING and j.error and j,
        what="the 429 to put the job back",
    )
    assert "busy (429" in waiting.error
    assert waiting.attempts == 0
    assert waiting.not_before >= submitted + 1.5  # retry-after: 2 s
    job = run.done(job)
    assert job.attempts == 0 and len(fake_api.requests) == 2


def test_spend_limit_parks_the_job_until_retried(dispatcher, fake_api) -> None:
    fake_api.script(spend_limit())
    run = dispatcher(endpoints=(endpoint("gpu-box", fake_api.url),))
    job = run.d.submit("k", JobKind.INFERENCE, PROMPT.to_body())
    parked = run.d.wait(job.id, 20)
    assert parked.state == JobState.PARKED
    assert "usage limit" in parked.error and "retry them" in parked.error
    assert "1 waiting for you" in run.d.status().message
    assert len(fake_api.requests) == 1  # no retry behind the user's back
    assert run.d.retry(job.id)
    assert run.done(job).result["endpoint"] == "gpu-box"


def test_bad_answer_uses_an_attempt_and_a_dead_job_stays(dispatcher, fake_api) -> None:
    fake_api.script(malformed(), malformed())
    run = dispatcher(endpoints=(endpoint("gpu-box", fake_api.url),))
    retried = run.d.submit("retried", JobKind.INFERENCE, PROMPT.to_body(), max_attempts=3)
    failed = until(lambda: (j := run.job(retried.id)).attempts == 1 and j)
    assert failed.state == JobState.PENDING and "not JSON" in failed.error
    assert failed.not_before > time.time() - 1  # backed off, not hammered
    run.d.cancel(retried.id)

    dead = run.d.submit("dead", JobKind.INFERENCE, PROMPT.to_body(), max_attempts=1)
    dead = run.d.wait(dead.id, 20)
    assert dead.state == JobState.DEAD and dead.attempts == 1 and "not JSON" in dead.error
    assert run.d.queue.get_by_key("dead") == dead  # kept for inspection
    assert "1 failed" in run.d.status().message
    # the endpoint is up: an answer it cannot parse is the job's failure, not an outage
    assert run.d.status().remotes == {"gpu-box": "up"}


def test_all_endpoints_down_waits_then_drains_when_one_comes_up(dispatcher) -> None:
    port = free_port()
    # retry_down_s longer than done()'s wait: only the wake-up on recovery can drain the job
    run = dispatcher(
        endpoints=(endpoint("gpu-box", f"http://127.0.0.1:{port}"),), retry_down_s=120.0
    )
    until(lambda: run.d.status().state == "offline", what="offline")
    job = run.d.submit("k", JobKind.INFERENCE, PROMPT.to_body())
    until(lambda: run.job(job.id).error, what="the job to find its remote down")
    time.sleep(1.0)  # several probe intervals: still waiting, nothing used up
    waiting = run.job(job.id)
    assert waiting.state == JobState.PENDING and waiting.attempts == 0
    assert waiting.error.startswith("waiting for a remote: ")
    status = run.d.status()
    assert status.state == "offline" and "1 queued" in status.message

    with FakeMessagesAPI(port=port) as api:
        job = run.done(job)
        assert job.attempts == 0 and job.result["endpoint"] == "gpu-box"
        assert len(api.requests) == 1
        until(lambda: run.statuses[-1].state == "ready", what="ready")
        states = run.states()  # before the remote goes away again
    assert "offline" in states and states[-1] == "ready"
    assert states.index("offline") < len(states) - 1 - states[::-1].index("ready")


def test_privacy_policy_keeps_cloud_endpoints_out(dispatcher, fake_api, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_CLOUD_KEY", "sk-not-a-real-key")
    with FakeMessagesAPI() as cloud_api:
        cloud = endpoint("cloud", cloud_api.url, privacy="cloud", api_key_env="FAKE_CLOUD_KEY")
        run = dispatcher(endpoints=(cloud, endpoint("gpu-box", fake_api.url)))
        job = run.done(run.d.submit("k", JobKind.INFERENCE, PROMPT.to_body()))
        assert job.result["endpoint"] == "gpu-box"

        run.d.stop()
        run2 = dispatcher(endpoints=(cloud,))
        only_cloud = run2.d.submit("cloud-only", JobKind.INFERENCE, PROMPT.to_body())
        parked = run2.d.wait(only_cloud.id, 20)
        assert parked.state == JobState.PARKED and "privacy policy" in parked.error
        assert cloud_api.requests == []  # not one byte left for the cloud


# -- exec: local sandbox and gateway ----------------------------------------------------------

WRITE_OUT = "import os\nopen('out.txt', 'w').write('hello ' + str(os.getpid() > 0))\n"


def test_no_gateway_runs_cpu_jobs_in_the_local_sandbox(dispatcher) -> None:
    run = dispatcher()
    spec = python_spec(WRITE_OUT + "import time; time.sleep(0.5)\n", artifacts=["out.txt"])
    job = run.done(run.d.submit("test:a", JobKind.EXEC, exec_payload(spec)))
    assert job.result["where"] == "local" and job.result["state"] == "succeeded"
    assert artifact(job, "out.txt") == "hello True"
    local = [s for s in run.statuses if s.running_locally]
    assert local and all("running locally" in s.message for s in local)
    until(lambda: run.statuses[-1].running_locally == 0 and run.statuses[-1].state == "ready")


def test_gateway_up_runs_jobs_remotely(dispatcher, tmp_path) -> None:
    with gateway(tmp_path / "gw") as url:
        run = dispatcher(gateways=[gateway_target(url)])
        spec = python_spec(WRITE_OUT, artifacts=["out.txt"])
        job = run.done(run.d.submit("test:a", JobKind.EXEC, exec_payload(spec)))
        assert job.result["where"] == url and job.result["state"] == "succeeded"
        assert artifact(job, "out.txt") == "hello True"
        assert not any(s.running_locally for s in run.statuses)


def test_refused_gateway_cpu_falls_back_gpu_waits_until_it_comes_up(dispatcher, tmp_path) -> None:
    port = free_port()
    run = dispatcher(gateways=[gateway_target(f"http://127.0.0.1:{port}")])
    cpu = run.d.submit("cpu", JobKind.EXEC, exec_payload(python_spec("print('cpu')")))
    gpu_spec = python_spec("print('gpu')", resources=GPU)
    gpu = run.d.submit("gpu", JobKind.EXEC, exec_payload(gpu_spec), resources=GPU)
    cpu = run.done(cpu)
    assert cpu.result["where"] == "local" and cpu.result["stdout_tail"] == "cpu\n"

    time.sleep(1.0)  # the GPU job keeps waiting, without using attempts
    waiting = run.job(gpu.id)
    assert waiting.state in (JobState.PENDING, JobState.LEASED) and waiting.attempts == 0
    assert "GPU jobs wait for a gateway" in (waiting.error or "GPU jobs wait for a gateway")
    assert run.d.status().state == "offline"

    with gateway(tmp_path / "gw", gpus=["fake-gpu-0"], port=port) as url:
        gpu = run.done(gpu)
        assert gpu.result["where"] == url and gpu.result["stdout_tail"] == "gpu\n"
        assert gpu.attempts == 0
        until(lambda: run.statuses[-1].state == "ready", what="ready")
        states = run.states()  # before the gateway goes away again
    assert "offline" in states and states[-1] == "ready"


def test_gpu_job_on_a_gateway_without_gpus_fails_for_good(dispatcher, tmp_path) -> None:
    """The local backend refuses more GPUs than its machine has (a 400): waiting cannot help."""
    with gateway(tmp_path / "gw", gpus=[]) as url:
        run = dispatcher(gateways=[gateway_target(url)])
        spec = python_spec("print('gpu')", resources=GPU)
        job = run.d.wait(
            run.d.submit("gpu", JobKind.EXEC, exec_payload(spec), resources=GPU).id, 20
        )
        assert job.state == JobState.DEAD and "0 GPU(s)" in job.error
        assert run.d.status().remotes == {"gateway": "up"}


def test_hung_gateway_is_never_sent_jobs_and_cpu_jobs_fall_back_together(dispatcher) -> None:
    """Four jobs meet a gateway that accepts connections and never answers: only its health
    poll is sent there (and gives up at its read timeout); no job is, and all four run locally.
    (Jobs used to be submitted there and each waited out its own read timeout.)"""
    with hung_remote() as remote:
        run = dispatcher(
            gateways=[gateway_target(remote.url)], probe_interval_s=30.0, max_concurrency=4
        )
        jobs = [
            run.d.submit(f"cpu{i}", JobKind.EXEC, exec_payload(python_spec("print(1)")))
            for i in range(4)
        ]
        assert all(run.done(job).result["where"] == "local" for job in jobs)
        assert remote.accepted == 1  # the health poll, once: the next is 30 s away
        assert run.d.status().remotes == {"gateway": "down"}


def test_busy_gateway_releases_gpu_jobs_and_cpu_jobs_fall_back(dispatcher, tmp_path) -> None:
    with (
        gateway(tmp_path / "gw", gpus=["fake-gpu-0"], max_active_per_token=1) as url,
        ExecutionClient(url, TOKEN) as client,
    ):
        blocker = client.submit("blocker", python_spec("import time; time.sleep(30)"))
        run = dispatcher(gateways=[gateway_target(url)])
        submitted = time.time()
        spec = python_spec("print('gpu')", resources=GPU)
        gpu = run.d.submit("gpu", JobKind.EXEC, exec_payload(spec), resources=GPU)
        cpu = run.d.submit("cpu", JobKind.EXEC, exec_payload(python_spec("print('cpu')")))
        # (It may first wait for the gateway's first health answer: a short wait of its own.)
        released = until(lambda: (j := run.job(gpu.id)).error == "the gateway is busy" and j)
        assert released.state == JobState.PENDING and released.attempts == 0
        assert released.not_before >= submitted + 0.5  # the gateway's Retry-After: 1 s
        assert run.done(cpu).result["where"] == "local"
        assert run.d.status().remotes == {"gateway": "up"}  # busy is not down

        client.cancel(blocker.id)
        gpu = run.done(gpu)
        assert gpu.result["where"] == url and gpu.attempts == 0


def test_cancel_and_cancel_superseded_pending_jobs(dispatcher) -> None:
    run = dispatcher(gateways=[gateway_target(refused_url())])
    jobs = {
        key: run.d.submit(
            key, JobKind.EXEC, exec_payload(python_spec("1", resources=GPU)), resources=GPU
        )
        for key in ("doc@1/a", "doc@1/b", "doc@2/a", "other")
    }
    assert run.d.cancel_superseded("doc@1/") == [jobs["doc@1/a"].id, jobs["doc@1/b"].id]
    assert run.d.cancel(jobs["other"].id)
    states = {key: run.job(job.id).state for key, job in jobs.items()}
    cancelled = {key for key, state in states.items() if state == JobState.CANCELLED}
    assert cancelled == {"doc@1/a", "doc@1/b", "other"}
    assert states["doc@2/a"] in (JobState.PENDING, JobState.LEASED)
    assert run.d.status().queue[JobState.CANCELLED] == 3


def test_cancelling_a_running_local_job_stops_it(dispatcher) -> None:
    run = dispatcher()
    spec = python_spec("open('started', 'w'); import time; time.sleep(30)")
    job = run.d.submit("long", JobKind.EXEC, exec_payload(spec))
    until(lambda: run.job(job.id).state == JobState.LEASED and run.d.status().running_locally)
    assert run.d.cancel(job.id)
    until(lambda: run.d.status().running_locally == 0, timeout_s=15, what="the job to stop")
    assert run.job(job.id).state == JobState.CANCELLED


# -- drain ------------------------------------------------------------------------------------

JOB_SPAN = """\
import time
start = time.time()
time.sleep(0.4)
open('span.txt', 'w').write(f'{start} {time.time()}')
"""


def test_backlog_drains_into_the_gateways_free_slots_when_it_returns(dispatcher, tmp_path) -> None:
    """Six jobs wait for a gateway that is down; it comes back with two slots. The backlog goes
    there two at a time: the rest wait in our queue, not in the gateway's (its health, sampled
    throughout, never shows more jobs than slots)."""
    port = free_port()
    run = dispatcher(
        gateways=[gateway_target(f"http://127.0.0.1:{port}")],
        local_fallback=False,
        max_concurrency=2,
    )
    spec = python_spec(JOB_SPAN, artifacts=["span.txt"])
    jobs = [run.d.submit(f"job{i}", JobKind.EXEC, exec_payload(spec)) for i in range(6)]
    until(lambda: run.d.status().state == "offline")
    assert all(run.job(j.id).state != JobState.DONE for j in jobs)

    with gateway(tmp_path / "gw", port=port, slots=2) as url, sample_health(url) as seen:
        done = [run.done(j, timeout_s=40) for j in jobs]
    assert all(j.result["where"] == url for j in done)
    # (A job is "queued" there for a moment even with a slot free, until its thread starts.)
    assert seen and max(h["running"] + h["queued"] for h in seen) <= 2, seen
    spans = [tuple(map(float, artifact(j, "span.txt").split())) for j in done]
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert 1 <= peak <= 2, spans


def test_a_job_queued_on_the_gateway_is_not_cancelled_for_waiting(dispatcher, tmp_path) -> None:
    """A GPU job waits on the gateway for its one GPU longer than its own timeout: the wait is
    not the job overrunning. (The dispatcher used to count the queueing against the job's
    deadline, cancel it there, and resubmitting the same key then returned the cancelled
    record: the job ended DONE as "cancelled" without ever running.)"""
    with gateway(tmp_path / "gw", gpus=["fake-gpu-0"]) as url:
        with ExecutionClient(url, TOKEN) as client:
            hog = client.submit("hog", python_spec("import time; time.sleep(3)", resources=GPU))
            run = dispatcher(gateways=[gateway_target(url)])
            spec = python_spec("print('gpu')", resources=GPU, timeout_s=1.0)
            job = run.done(run.d.submit("gpu", JobKind.EXEC, exec_payload(spec), resources=GPU))
            assert client.get(hog.id).state == "succeeded"
        assert job.result["state"] == "succeeded" and job.result["stdout_tail"] == "gpu\n"
