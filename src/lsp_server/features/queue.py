"""The queue commands: `gantry.queueStatus` and `gantry.retryQueued`, for the folder named by
`uri` (a folder or a document in it), else the first workspace folder."""

from __future__ import annotations

from typing import Any

from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from lsp_server.contract.commands import QueueStatusArgs, RetryArgs
from lsp_server.features.commands import command
from lsp_server.services.folders import FolderRemote
from lsp_server.session import Session


def register(server: LanguageServer, session: Session) -> None:
    def remote_for(uri: str | None) -> FolderRemote:
        folders = session.folders
        folder = folders.for_uri(uri) if uri else folders.first
        if folder is None or folder.remote is None:
            raise JsonRpcInvalidParams("no workspace folder with a queue is open")
        return folder.remote

    @command(server, "gantry.queueStatus")
    async def queue_status(ls: LanguageServer, params: QueueStatusArgs) -> dict[str, Any]:
        return await remote_for(params.uri).queue_status()

    @command(server, "gantry.retryQueued")
    async def retry_queued(ls: LanguageServer, params: RetryArgs) -> dict[str, Any]:
        return await remote_for(params.uri).retry(params.id)
