"""Owned background tasks: held until they end, failures logged by name, cancelled together."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from lsp_server.tasks import TaskSet


async def test_a_failing_task_is_logged_under_its_name(caplog: pytest.LogCaptureFixture) -> None:
    tasks = TaskSet(logging.getLogger("gantry.test"))

    async def fail() -> None:
        raise RuntimeError("the store refused it")

    task = tasks.spawn(fail(), "storing a verdict")
    gc.collect()  # held by the set, not only by the loop's weak references
    await asyncio.wait_for(asyncio.wait([task]), 5)
    assert len(tasks) == 0
    [record] = [r for r in caplog.records if r.name == "gantry.test"]
    assert record.getMessage() == "storing a verdict failed"
    assert "the store refused it" in str(record.exc_info[1])


async def test_cancel_stops_every_task_and_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    tasks = TaskSet(logging.getLogger("gantry.test"))
    started = asyncio.Event()

    async def wait_forever() -> None:
        started.set()
        await asyncio.Event().wait()

    spawned = [tasks.spawn(wait_forever(), f"waiter {n}") for n in range(3)]
    await asyncio.wait_for(started.wait(), 5)
    assert len(tasks) == 3
    tasks.cancel()
    await asyncio.wait_for(asyncio.wait(spawned), 5)
    assert all(task.cancelled() for task in spawned)
    assert len(tasks) == 0
    assert not [r for r in caplog.records if r.name == "gantry.test"]
