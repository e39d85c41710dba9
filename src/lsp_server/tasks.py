"""Background tasks with an owner.

The event loop keeps only weak references to tasks, and an exception in a task nobody awaits
surfaces, if at all, as "Task exception was never retrieved" when it is collected. A TaskSet
holds its tasks until they end, logs a failure under its owner's logger with the task's name,
and cancels them all at once when the owner stops (a document closed, a folder removed)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any


class TaskSet:
    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._ended)
        return task

    def cancel(self) -> None:
        for task in tuple(self._tasks):
            task.cancel()

    def __len__(self) -> int:
        return len(self._tasks)

    def _ended(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._log.error("%s failed", task.get_name(), exc_info=exc)
