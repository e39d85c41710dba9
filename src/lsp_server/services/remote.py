"""A workspace folder's remote side: its dispatcher's life, its state in `gantry/status`, and
what the queue commands (`gantry.queueStatus`, `gantry.retryQueued`) read and do."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from lsp_server.config import queue_path
from lsp_server.executors import Pool
from lsp_server.services.folders import Folder
from lsp_server.services.status import StatusReporter

if TYPE_CHECKING:
    from remote_exec.aio import AsyncDispatcher
    from remote_exec.dispatcher import DispatcherStatus
    from remote_exec.jobs import Job
    from remote_exec.settings import DispatcherConfig

log = logging.getLogger("gantry.remote")
_START_WAIT_S = 30.0


def job_summary(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "key": job.key,
        "kind": job.kind,
        "state": job.state,
        "attempts": job.attempts,
        "maxAttempts": job.max_attempts,
        "error": job.error,
        "notBefore": job.not_before if job.not_before > time.time() else None,
        "updatedAt": job.updated_at,
    }


class RemoteService:
    """The folder's dispatcher, seen only through remote_exec.aio: nothing here runs on or
    waits for a dispatcher thread; its blocking calls run in the remote pool."""

    def __init__(
        self,
        folder: Folder,
        status: StatusReporter,
        pool: Pool,
        notify_user: Callable[[str], None],
    ) -> None:
        self._folder = folder
        self._status = status
        self._pool = pool
        self._notify_user = notify_user
        self.dispatcher: AsyncDispatcher | None = None
        self._starting = False
        self._started = asyncio.Event()
        """Set once start() has settled, dispatcher or not: the queue commands wait for it."""

    async def start(self) -> None:
        if self._starting:
            return
        self._starting = True
        try:
            await self._start()
        finally:
            self._started.set()

    async def _start(self) -> None:
        folder = self._folder
        if _review_only(folder):
            return

        def configure() -> DispatcherConfig:  # in a thread: the imports take tens of ms
            from lsp_server.remote_setup import dispatcher_config
            from remote_exec.aio import AsyncDispatcher  # noqa: F401  (loaded here, off the loop)

            return dispatcher_config(folder.root, folder.settings)

        try:
            config = await self._pool.run(configure)
            from remote_exec.aio import AsyncDispatcher

            self.dispatcher = await AsyncDispatcher.start(
                config, announce=self._notify_user, executor=self._pool.executor
            )
        except Exception as exc:  # local review goes on without the remote side
            log.exception("the remote dispatcher of %s could not start", folder.name)
            self._status.set_problem("remote", f"remote execution is unavailable ({exc})")
            return
        self.dispatcher.on_status(self._show)

    async def stop(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()
            self._status.remotes.pop(self._folder.uri or "", None)
            self._status.update()

    def _show(self, status: DispatcherStatus) -> None:
        self._status.remotes[self._folder.uri or ""] = status
        self._status.update()

    async def queue_status(self) -> dict[str, Any]:
        dispatcher = await self._require()
        status = await dispatcher.status()
        return {
            "state": status.state,
            "message": status.message,
            "remotes": status.remotes,
            "gateways": [attrs.asdict(gateway) for gateway in status.gateways],
            "counts": status.queue,
            "jobs": [job_summary(job) for job in await dispatcher.jobs(limit=100)],
        }

    async def retry(self, job_id: int | None) -> dict[str, Any]:
        """Retry one job, or all dead and parked ones when `job_id` is None."""
        dispatcher = await self._require()
        return {"retried": await dispatcher.retry(job_id)}

    async def settled(self) -> AsyncDispatcher | None:
        """The dispatcher once its start has settled (a save or a command that arrives while
        it starts waits for it, bounded); None when there is none."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._started.wait(), _START_WAIT_S)
        return self.dispatcher

    async def _require(self) -> AsyncDispatcher:
        if await self.settled() is None:
            from pygls.exceptions import JsonRpcInternalError

            raise JsonRpcInternalError("remote execution is not available; see the server log")
        return self.dispatcher


def _review_only(folder: Folder) -> bool:
    """A folder that is not indexed (`gantry check`), with nothing remote configured and no
    queue to drain, has no work for a dispatcher: starting one would create the queue file."""
    settings = folder.settings
    return (
        not settings.index.enabled
        and not settings.inference.endpoints
        and not settings.execution.gateway_targets()
        and not queue_path(folder.root, settings).exists()
    )
