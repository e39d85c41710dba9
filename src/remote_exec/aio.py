"""The dispatcher as asyncio code sees it: submit a job and await its result, cancel it, and
hear of status changes, all on the event loop.

The dispatcher is threads (queue I/O must never run on a loop). Here every blocking call runs
in the executor given (the loop's default one if none), and everything its threads report is
handed to the loop with `call_soon_threadsafe`: callbacks given here run on the loop thread, so
no feature ever touches a dispatcher thread or blocks on `Dispatcher.wait`.

Waiting is not owning: cancelling a task that awaits a job ends the wait, not the job, which
stays in the durable queue and may still finish (its result is kept under its key, for the next
submit of that key). To stop the work itself, `cancel` it or `cancel_superseded` its key prefix.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Collection
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from remote_exec.jobs import Job, JobKind, JobState, Priority, Resources
from remote_exec.queue import CPU_ONLY

if TYPE_CHECKING:
    from remote_exec.dispatcher import Dispatcher, DispatcherStatus
    from remote_exec.settings import DispatcherConfig

log = logging.getLogger("remote_exec.aio")
P = ParamSpec("P")
T = TypeVar("T")


class JobNotDone(Exception):
    """The job ended without a result; `job` says how (its state and error)."""

    def __init__(self, job: Job) -> None:
        error = f": {job.error}" if job.error else ""
        super().__init__(f"job {job.id} ({job.key}) ended {job.state}{error}")
        self.job = job


class JobCancelled(JobNotDone):
    """Cancelled, here or by another process (e.g. superseded by a newer version)."""


class JobFailed(JobNotDone):
    """Dead (out of attempts, or failed for good) or parked (waiting for a person)."""


class AsyncDispatcher:
    """Made by `start`; every method is called on the loop it was started on."""

    def __init__(self, loop: asyncio.AbstractEventLoop, executor: Executor | None) -> None:
        self._loop = loop
        self._executor = executor
        self._dispatcher: Dispatcher | None = None
        self._status_listeners: list[Callable[[DispatcherStatus], None]] = []
        self._waits: set[asyncio.Future[Job | None]] = set()
        self.last_status: DispatcherStatus | None = None
        """The latest status the dispatcher published (None before the first)."""

    @classmethod
    async def start(
        cls,
        config: DispatcherConfig,
        *,
        announce: Callable[[str], None] = log.warning,
        executor: Executor | None = None,
    ) -> AsyncDispatcher:
        """Build and start a Dispatcher off the loop. `announce` (e.g. that local jobs run
        unsandboxed) is called on the loop; blocking calls go to `executor`."""
        self = cls(asyncio.get_running_loop(), executor)

        def build() -> Dispatcher:
            from remote_exec.dispatcher import Dispatcher  # ~100 ms of imports: not on the loop

            dispatcher = Dispatcher(
                config, on_status=self._to_loop(self._publish), announce=self._to_loop(announce)
            )
            dispatcher.start()
            return dispatcher

        self._dispatcher = await self._off_loop(build)
        return self

    async def stop(self) -> None:
        """Stop the workers and end every wait still under way with CancelledError (the jobs
        stay queued for the next start)."""
        for wait in list(self._waits):
            wait.cancel()
        await self._off_loop(self._require().stop)

    # -- jobs ---------------------------------------------------------------------------------

    async def submit(
        self,
        key: str,
        kind: JobKind,
        payload: dict[str, Any],
        *,
        resources: Resources = CPU_ONLY,
        priority: Priority = Priority.BACKGROUND,
        max_attempts: int = 5,
    ) -> Job:
        """Enqueue (idempotent on key: a known key returns its job, a done one with its result)."""
        return await self._off_loop(
            self._require().submit,
            key,
            kind,
            payload,
            resources=resources,
            priority=priority,
            max_attempts=max_attempts,
        )

    async def ended(self, job_id: int) -> Job:
        """The job once it has ended (done, dead, parked or cancelled), whatever the outcome.
        Raises LookupError if it is not in the queue (pruned, or never there)."""
        future: asyncio.Future[Job | None] = self._loop.create_future()
        unsubscribe = self._require().subscribe(
            job_id, self._to_loop(functools.partial(_settle, future))
        )
        self._waits.add(future)
        try:
            job = await future
        finally:  # a cancelled wait leaves nothing behind; a late answer finds the future done
            self._waits.discard(future)
            unsubscribe()
        if job is None:
            raise LookupError(f"job {job_id} is not in the queue")
        return job

    async def result(self, job_id: int) -> dict[str, Any]:
        """The result of the job once it is done. Raises JobCancelled or JobFailed otherwise."""
        job = await self.ended(job_id)
        if job.state == JobState.DONE:
            return job.result or {}
        raise (JobCancelled if job.state == JobState.CANCELLED else JobFailed)(job)

    async def run(
        self, key: str, kind: JobKind, payload: dict[str, Any], **options: Any
    ) -> dict[str, Any]:
        """`submit` (same options), then its `result`."""
        job = await self.submit(key, kind, payload, **options)
        return await self.result(job.id)

    def follow(self, job_id: int, on_change: Callable[[Job], None]) -> Callable[[], None]:
        """Call `on_change(job)` on the loop each time the job's state is seen to change, its
        end included. Returns the function that stops it: no call comes after that."""
        following = True

        def deliver(job: Job) -> None:
            if following:
                on_change(job)

        unsubscribe = self._require().subscribe(job_id, _ignore, on_change=self._to_loop(deliver))

        def stop() -> None:
            nonlocal following
            following = False
            unsubscribe()

        return stop

    async def cancel(self, job_id: int) -> bool:
        """Cancel the job's queue row (a run in this process stops now); its waiters get
        JobCancelled. False if it had already ended."""
        return await self._off_loop(self._require().cancel, job_id)

    async def cancel_superseded(self, key_prefix: str) -> list[int]:
        """Cancel, atomically, every job not yet ended whose key starts with `key_prefix` (e.g.
        "ai-review:file:///x.py@" when version 8 of x.py arrives); returns their ids."""
        return await self._off_loop(self._require().cancel_superseded, key_prefix)

    async def retry(self, job_id: int | None = None) -> int:
        """Queue a dead, parked or cancelled job again; with no id, every dead and parked one.
        Returns how many were queued again."""
        dispatcher = self._require()

        def retry() -> int:
            if job_id is not None:
                return int(dispatcher.retry(job_id))
            stuck = dispatcher.queue.list(states=[JobState.DEAD, JobState.PARKED], limit=10_000)
            return sum(dispatcher.retry(job.id) for job in stuck)

        return await self._off_loop(retry)

    async def jobs(self, states: Collection[str] | None = None, limit: int = 100) -> list[Job]:
        """Jobs in the given states (all when None), newest first."""
        return await self._off_loop(self._require().queue.list, states, limit)

    # -- status -------------------------------------------------------------------------------

    async def status(self) -> DispatcherStatus:
        """The status read now from the queue (the events below may lag it a little)."""
        return await self._off_loop(self._require().status)

    def on_status(self, callback: Callable[[DispatcherStatus], None]) -> Callable[[], None]:
        """Call `callback(status)` on the loop at each status change, and soon with the latest
        one if there is one already. Returns the function that stops it."""
        self._status_listeners.append(callback)
        if self.last_status is not None:
            self._loop.call_soon(self._tell_one, callback, self.last_status)

        def stop() -> None:
            if callback in self._status_listeners:
                self._status_listeners.remove(callback)

        return stop

    def _publish(self, status: DispatcherStatus) -> None:
        self.last_status = status
        for callback in list(self._status_listeners):
            self._tell_one(callback, status)

    def _tell_one(
        self, callback: Callable[[DispatcherStatus], None], status: DispatcherStatus
    ) -> None:
        if callback not in self._status_listeners:
            return  # stopped after this call was scheduled
        try:
            callback(status)
        except Exception:
            log.exception("a status listener failed")

    # -- the bridge ---------------------------------------------------------------------------

    def _require(self) -> Dispatcher:
        if self._dispatcher is None:
            raise RuntimeError("the dispatcher is not started")
        return self._dispatcher

    async def _off_loop(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._loop.run_in_executor(
            self._executor, functools.partial(call, *args, **kwargs)
        )

    def _to_loop(self, call: Callable[..., None]) -> Callable[..., None]:
        """`call`, made callable from any thread: it runs on the loop, or not at all once the
        loop is closed (nobody is left to hear)."""

        def handoff(*args: Any) -> None:
            try:
                self._loop.call_soon_threadsafe(call, *args)
            except RuntimeError:
                log.debug("the event loop is closed; %r dropped", call)

        return handoff


def _settle(future: asyncio.Future[Job | None], job: Job | None) -> None:
    if not future.done():  # the waiter may have given up
        future.set_result(job)


def _ignore(_job: Job | None) -> None:
    pass
