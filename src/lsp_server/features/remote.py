"""The remote side as the editor sees it: the dispatcher's life, its state in `gantry/status`,
and the queue commands (`gantry.queueStatus`, `gantry.retryQueued`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import attrs

from lsp_server.config import queue_path
from lsp_server.features.commands import parse_args

if TYPE_CHECKING:
    from lsp_server.server import GantryServer
    from remote_exec.aio import AsyncDispatcher
    from remote_exec.dispatcher import DispatcherStatus
    from remote_exec.jobs import Job
    from remote_exec.settings import DispatcherConfig

log = logging.getLogger("gantry.remote")
_START_WAIT_S = 30.0


@attrs.frozen
class RetryArgs:
    id: int | None = None
    """One job; all dead and parked jobs when omitted."""


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
    """The workspace's dispatcher, seen only through remote_exec.aio: nothing here runs on or
    waits for a dispatcher thread."""

    def __init__(self, server: GantryServer) -> None:
        self.server = server
        self.dispatcher: AsyncDispatcher | None = None
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
        server = self.server

        def configure() -> DispatcherConfig:  # in a thread: the imports take tens of ms
            from lsp_server.remote_setup import dispatcher_config
            from remote_exec.aio import AsyncDispatcher  # noqa: F401  (loaded here, off the loop)

            return dispatcher_config(server.root, server.settings)

        try:
            config = await asyncio.to_thread(configure)
            from remote_exec.aio import AsyncDispatcher

            self.dispatcher = await AsyncDispatcher.start(config, announce=server.notify_user)
        except Exception as exc:  # local review goes on without the remote side
            log.exception("the remote dispatcher could not start")
            server.status.set_problem("remote", f"remote execution is unavailable ({exc})")
            return
        self.dispatcher.on_status(self._show)

    async def stop(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop()

    def _show(self, status: DispatcherStatus) -> None:
        self.server.status.remote = status
        self.server.status.update()

    async def queue_status(self) -> dict[str, Any]:
        dispatcher = await self._require()
        status = await dispatcher.status()
        return {
            "state": status.state,
            "message": status.message,
            "remotes": status.remotes,
            "counts": status.queue,
            "jobs": [job_summary(job) for job in await dispatcher.jobs(limit=100)],
        }

    async def retry(self, args: RetryArgs) -> dict[str, Any]:
        dispatcher = await self._require()
        return {"retried": await dispatcher.retry(args.id)}

    async def _require(self) -> AsyncDispatcher:
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

    @server.command("gantry.queueStatus")
    async def queue_status(ls, *args: Any) -> dict[str, Any]:  # no hints: pygls resolves them
        return await service.queue_status()

    @server.command("gantry.retryQueued")
    async def retry_queued(ls, *args: Any) -> dict[str, Any]:
        params = parse_args(RetryArgs, list(args)) if args and args != ([],) else RetryArgs()
        return await service.retry(params)
