"""Named, bounded thread pools for work that must not run on the event loop.

Each kind of work has its own pool, so no kind can starve another (ruff's server has its
background schedules for the same reason): a 30 s index of the workspace or a job waiting on a
remote GPU never delays the ruff review of the line being typed.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

import attrs

P = ParamSpec("P")
T = TypeVar("T")


class Pool:
    """A bounded pool with a name that shows in thread dumps (py-spy, faulthandler)."""

    def __init__(self, name: str, workers: int) -> None:
        self.name = name
        self.workers = workers
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix=f"gantry-{name}")

    @property
    def executor(self) -> ThreadPoolExecutor:
        """For APIs that take an Executor (remote_exec.aio)."""
        return self._threads

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` on one of this pool's threads, with the caller's context."""
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs):
        """From any thread, without waiting: a concurrent.futures.Future."""
        return self._threads.submit(fn, *args, **kwargs)

    def shutdown(self) -> None:
        """Queued work is dropped; running work finishes on its own (threads cannot be killed)."""
        self._threads.shutdown(wait=False, cancel_futures=True)


@attrs.frozen
class Executors:
    review: Pool
    """Latency-sensitive: the local review of open documents and of files asked for."""
    background: Pool
    """Indexing, store reads and writes, settings files, AI preparation."""
    remote: Pool
    """Talking to or waiting on the remote side: dispatcher start and stop, queue commands."""
    testgen: Pool
    """Test generation runs: each holds a worker for its whole budget (minutes), so they get
    their own, and two may run at once (different symbols)."""

    @classmethod
    def create(cls) -> Executors:
        # Review: an editor review and two on-disk ruff runs at once (ruff is multi-threaded
        # inside); background: indexing holds one worker for its whole pass.
        return cls(
            review=Pool("review", 4),
            background=Pool("background", 2),
            remote=Pool("remote", 4),
            testgen=Pool("testgen", 2),
        )

    def shutdown(self) -> None:
        for pool in (self.review, self.background, self.remote, self.testgen):
            pool.shutdown()
