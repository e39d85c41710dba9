"""The queue commands: `gantry.queueStatus` and `gantry.retryQueued`, for the folder named by
`uri` (a folder or a document in it), else the first workspace folder."""

from __future__ import annotations

from typing import Any

import attrs
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from lsp_server.features.commands import parse_args
from lsp_server.services.remote import RemoteService
from lsp_server.session import Session


@attrs.frozen
class QueueStatusArgs:
    uri: str | None = None


@attrs.frozen
class RetryArgs:
    id: int | None = None
    """One job; all dead and parked jobs when omitted."""
    uri: str | None = None


def _args(cls: type, args: tuple):
    return parse_args(cls, list(args)) if args and args != ([],) else cls()


def register(server: LanguageServer, session: Session) -> None:
    def remote_for(uri: str | None) -> RemoteService:
        folders = session.folders
        folder = folders.for_uri(uri) if uri else folders.first
        if folder is None or folder.remote is None:
            raise JsonRpcInvalidParams("no workspace folder with a queue is open")
        return folder.remote

    @server.command("gantry.queueStatus")
    async def queue_status(ls, *args: Any) -> dict[str, Any]:  # no hints: pygls resolves them
        params: QueueStatusArgs = _args(QueueStatusArgs, args)
        return await remote_for(params.uri).queue_status()

    @server.command("gantry.retryQueued")
    async def retry_queued(ls, *args: Any) -> dict[str, Any]:
        params: RetryArgs = _args(RetryArgs, args)
        return await remote_for(params.uri).retry(params.id)
