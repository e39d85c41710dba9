"""The remote side as the editor sees it: the dispatcher's life, its state in `gantry/status`,
and the queue commands (`gantry.queueStatus`, `gantry.retryQueued`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from lsp_server.config import queue_path
from lsp_server.contract.commands import NoArgs, RetryArgs
from lsp_server.features.commands import command

if TYPE_CHECKING:
    from lsp_server.server import GantryServer
    from remote_exec.dispatcher import Dispatcher, DispatcherStatus
    from remote_exec.jobs import Job

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
    def __init__(self, server: GantryServer) -> None:
        self.server = server
        self.dispatcher: Dispatcher | None = None
        self._started = asyncio.Event()
        """Set once start() has settled, dispatcher or not: the queue commands wait for it."""

    async def start(self) -> None:
        try:
            await self._start()
        finally:
            self._started.set()

    async def _start(self) -> None:
        if _review_only(self.server):
            return
        server, loop = self.server, asyncio.get_running_loop()

        def on_status(status: DispatcherStatus) -> None:  # called from dispatcher threads
            loop.call_soon_threadsafe(self._show, status)

        def announce(message: str) -> None:
            loop.call_soon_threadsafe(server.notify_user, message)

        def build() -> Dispatcher:  # in a thread: importing the dispatcher takes ~100 ms
            from lsp_server.remote_setup import dispatcher_config
            from remote_exec.dispatcher import Dispatcher

            dispatcher = Dispatcher(
                dispatcher_config(server.root, server.settings),
                on_status=on_status,
                announce=announce,
            )
            dispatcher.start()
            return dispatcher

        try:
            self.dispatcher = await asyncio.to_thread(build)
        except Exception as exc:  # local review goes on without the remote side
            log.exception("the remote dispatcher could not start")
            server.status.set_problem("remote", f"remote execution is unavailable ({exc})")

    async def stop(self) -> None:
        if self.dispatcher is not None:
            await asyncio.to_thread(self.dispatcher.stop)

    def _show(self, status: DispatcherStatus) -> None:
        self.server.status.remote = status
        self.server.status.update()

    async def queue_status(self) -> dict[str, Any]:
        dispatcher = await self._require()

        def read() -> dict[str, Any]:
            status = dispatcher.status()
            return {
                "state": status.state,
                "message": status.message,
                "remotes": status.remotes,
                "counts": status.queue,
                "jobs": [job_summary(job) for job in dispatcher.queue.list(limit=100)],
            }

        return await asyncio.to_thread(read)

    async def retry(self, args: RetryArgs) -> dict[str, Any]:
        dispatcher = await self._require()

        def retry() -> int:
            from remote_exec.jobs import JobState

            if args.id is not None:
                return int(dispatcher.retry(args.id))
            stuck = dispatcher.queue.list(states=[JobState.DEAD, JobState.PARKED], limit=10_000)
            return sum(dispatcher.retry(job.id) for job in stuck)

        return {"retried": await asyncio.to_thread(retry)}

    async def _require(self) -> Dispatcher:
        # A command that arrives while the dispatcher starts (in a thread) waits for it.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._started.wait(), _START_WAIT_S)
        if self.dispatcher is None:
            from pygls.exceptions import JsonRpcInternalError

            raise JsonRpcInternalError("remote execution is not available; see the server log")
        return self.dispatcher


def _review_only(server: GantryServer) -> bool:
    """A session that does not index (`gantry check`), with nothing remote configured and no
    queue to drain, has no work for a dispatcher: starting one would create the queue file."""
    settings = server.settings
    return (
        not settings.index.enabled
        and not settings.inference.endpoints
        and settings.execution.gateway is None
        and not queue_path(server.root, settings).exists()
    )


def register(server: GantryServer) -> None:
    service = server.remote

    @command(server, "gantry.queueStatus")
    async def queue_status(ls: GantryServer, params: NoArgs) -> dict[str, Any]:
        return await service.queue_status()

    @command(server, "gantry.retryQueued")
    async def retry_queued(ls: GantryServer, params: RetryArgs) -> dict[str, Any]:
        return await service.retry(params)
