"""The dispatcher from asyncio: jobs awaited, cancelled and followed on the loop, with real parts
(the scripted Messages API on loopback, the bubblewrap sandbox, a real SQLite queue file, which
the tests also read through a JobQueue of their own, as a second process would).

Every wait is bounded by `asyncio.timeout`; nothing asserts speed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import cattrs
import pytest
from fake_messages_api import FakeMessagesAPI, text
from gateway_harness import python_spec

from remote_exec import inference
from remote_exec.aio import AsyncDispatcher, JobCancelled
from remote_exec.dispatcher import DispatcherStatus
from remote_exec.jobs import ExecResult, Job, JobKind, JobState, Resources
from remote_exec.queue import JobQueue
from remote_exec.sandbox import Sandbox
from remote_exec.settings import DispatcherConfig, Endpoint

pytestmark = pytest.mark.skipif(
    Sandbox().check() is not None, reason=f"bubblewrap cannot run here: {Sandbox().check()}"
)

PROMPT = inference.InferenceRequest([{"role": "user", "content": "Review this."}])
GPU = Resources(gpus=1)
"""With no gateway configured a GPU job waits queued: a job that stays cancellable."""
BOUND_S = 30.0

Start = Callable[..., Awaitable[AsyncDispatcher]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    started: list[AsyncDispatcher] = []

    async def start(**fields: Any) -> AsyncDispatcher:
        config = DispatcherConfig(
            queue_path=tmp_path / "queue.sqlite",
            work_root=tmp_path / "work",
            **{"lease_s": 6.0, "retry_down_s": 0.3, "probe_interval_s": 0.2, **fields},
        )
        dispatcher = await AsyncDispatcher.start(config)
        started.append(dispatcher)
        return dispatcher

    yield start
    for dispatcher in started:
        await dispatcher.stop()


@pytest.fixture
def queue(tmp_path: Path) -> JobQueue:
    """The same queue file, read from outside the dispatcher (off the loop: see `read`)."""
    return JobQueue(tmp_path / "queue.sqlite")


async def read(queue: JobQueue, job_id: int) -> Job:
    job = await asyncio.to_thread(queue.get, job_id)
    assert job is not None
    return job


@pytest.fixture
def fake_api() -> Iterator[FakeMessagesAPI]:
    with FakeMessagesAPI() as api:
        yield api


@pytest.fixture
async def loop_errors() -> list[dict[str, Any]]:
    """What reached the loop's exception handler: a callback that raised, a future never read."""
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: errors.append(context))
    return errors


def exec_payload(script: str) -> dict[str, Any]:
    return attrs.asdict(python_spec(script))


async def test_an_inference_job_is_awaited_and_status_events_arrive_on_the_loop(
    start: Start, fake_api: FakeMessagesAPI
) -> None:
    fake_api.script(text("LGTM"))
    loop_thread = threading.get_ident()
    heard: list[tuple[int, DispatcherStatus]] = []
    dispatcher = await start(endpoints=(Endpoint(name="gpu", base_url=fake_api.url, model="m"),))
    dispatcher.on_status(lambda status: heard.append((threading.get_ident(), status)))

    async with asyncio.timeout(BOUND_S):
        result = await dispatcher.run("ai-review:a.py@1", JobKind.INFERENCE, PROMPT.to_body())
        while not heard or heard[-1][1].state != "ready":
            await asyncio.sleep(0.02)

    answer = inference.InferenceResult.from_dict(result)
    assert (answer.endpoint, answer.text) == ("gpu", "LGTM")
    assert {thread for thread, _ in heard} == {loop_thread}
    assert dispatcher.last_status == heard[-1][1]
    # The key is the cache: the same key answers at once from the queue, with no new request.
    again = await dispatcher.run("ai-review:a.py@1", JobKind.INFERENCE, PROMPT.to_body())
    assert again == result and len(fake_api.requests) == 1


async def test_an_exec_job_runs_in_the_local_sandbox_and_its_states_are_followed(
    start: Start,
) -> None:
    dispatcher = await start()  # no gateway: CPU jobs fall back to the local sandbox
    loop_thread = threading.get_ident()
    states: list[tuple[int, str]] = []
    job = await dispatcher.submit("tests:a.py@1", JobKind.EXEC, exec_payload("print('ran')"))
    dispatcher.follow(job.id, lambda job: states.append((threading.get_ident(), job.state)))

    async with asyncio.timeout(BOUND_S):
        result = cattrs.structure(await dispatcher.result(job.id), ExecResult)
        while not states or states[-1][1] != JobState.DONE:
            await asyncio.sleep(0.02)

    assert (result.where, result.state, result.exit_code) == ("local", "succeeded", 0)
    assert "ran" in result.stdout_tail
    assert {thread for thread, _ in states} == {loop_thread}


async def test_cancelling_a_queued_job_cancels_its_row_and_ends_its_waiters(
    start: Start, queue: JobQueue
) -> None:
    dispatcher = await start()
    job = await dispatcher.submit(
        "tests:gpu@1", JobKind.EXEC, attrs.asdict(python_spec("1", resources=GPU)), resources=GPU
    )
    waiter = asyncio.create_task(dispatcher.result(job.id))
    ending = asyncio.create_task(dispatcher.ended(job.id))
    await asyncio.sleep(0)  # both are waiting

    assert await dispatcher.cancel(job.id)
    async with asyncio.timeout(BOUND_S):
        with pytest.raises(JobCancelled) as cancelled:
            await waiter
        ended = await ending
    assert cancelled.value.job.state == ended.state == JobState.CANCELLED
    assert (await read(queue, job.id)).state == JobState.CANCELLED
    assert not await dispatcher.cancel(job.id)  # already ended


async def test_cancelling_a_running_local_job_stops_it(start: Start) -> None:
    dispatcher = await start()
    job = await dispatcher.submit(
        "tests:long@1", JobKind.EXEC, exec_payload("import time; time.sleep(60)")
    )
    async with asyncio.timeout(BOUND_S):
        while (dispatcher.last_status is None) or not dispatcher.last_status.running_locally:
            await asyncio.sleep(0.02)
        assert await dispatcher.cancel(job.id)
        assert (await dispatcher.ended(job.id)).state == JobState.CANCELLED
        while dispatcher.last_status.running_locally:  # the sandbox was stopped
            await asyncio.sleep(0.02)


async def test_superseded_work_is_cancelled_by_key_prefix_and_other_keys_are_left(
    start: Start, queue: JobQueue
) -> None:
    dispatcher = await start()

    async def submit(key: str) -> Job:
        payload = attrs.asdict(python_spec("1", resources=GPU))
        return await dispatcher.submit(key, JobKind.EXEC, payload, resources=GPU)

    old = [await submit(f"ai-review:file:///x.py@1#{unit}") for unit in ("f", "g")]
    other = await submit("ai-review:file:///x.pyi@1#f")
    elsewhere = await submit("ai-review:file:///y.py@1#f")
    waiter = asyncio.create_task(dispatcher.result(old[0].id))

    assert await dispatcher.cancel_superseded("ai-review:file:///x.py@") == [j.id for j in old]
    newer = await submit("ai-review:file:///x.py@2#f")
    async with asyncio.timeout(BOUND_S):
        with pytest.raises(JobCancelled):
            await waiter
    for job in old:
        assert (await read(queue, job.id)).state == JobState.CANCELLED
    for job in (other, elsewhere, newer):
        assert (await read(queue, job.id)).state in (JobState.PENDING, JobState.LEASED)


async def test_a_result_that_comes_after_its_waiter_gave_up_is_kept_and_harms_nothing(
    start: Start, loop_errors: list[dict[str, Any]]
) -> None:
    dispatcher = await start()
    job = await dispatcher.submit(
        "tests:late@1", JobKind.EXEC, exec_payload("import time; time.sleep(1); print('late')")
    )
    waiter = asyncio.create_task(dispatcher.result(job.id))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # Its subscription went with it: nothing is left to call back into a cancelled future.
    assert job.id not in dispatcher._require()._subscriptions

    async with asyncio.timeout(BOUND_S):
        result = await dispatcher.result(job.id)  # waiting is not owning: the job went on
        for _ in range(10):
            await asyncio.sleep(0.05)  # room for any late callback to land
    assert "late" in cattrs.structure(result, ExecResult).stdout_tail
    assert loop_errors == []


async def test_stopping_ends_the_waits_still_under_way(start: Start) -> None:
    dispatcher = await start()
    job = await dispatcher.submit(
        "tests:gpu@1", JobKind.EXEC, attrs.asdict(python_spec("1", resources=GPU)), resources=GPU
    )
    waiter = asyncio.create_task(dispatcher.ended(job.id))
    await asyncio.sleep(0)
    async with asyncio.timeout(BOUND_S):
        await dispatcher.stop()
        with pytest.raises(asyncio.CancelledError):
            await waiter
