"""initialize / initialized / workspace folders / configuration changes / shutdown."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_server.capabilities import ClientCaps
from lsp_server.services.indexing import watch_files
from lsp_server.session import Session

log = logging.getLogger("gantry.lifecycle")


def _folder_uris(params: types.InitializeParams) -> list[str]:
    """Every workspace folder; else the root (older clients); else none (single files)."""
    if params.workspace_folders:
        return [folder.uri for folder in params.workspace_folders]
    if params.root_uri:
        return [params.root_uri]
    return [Path(params.root_path).absolute().as_uri()] if params.root_path else []


def register(server: LanguageServer, session: Session) -> None:
    folders, service = session.folders, session.folder_service

    @server.feature(types.INITIALIZE)
    def initialize(ls: LanguageServer, params: types.InitializeParams) -> None:
        session.setup.caps = ClientCaps.from_lsp(params.capabilities)
        session.setup.init_options = params.initialization_options
        session.status.work_done_progress = session.caps.work_done_progress
        for uri in _folder_uris(params):
            service.add(uri)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: LanguageServer, params: types.InitializedParams) -> None:
        started = list(folders)
        folders.outside.started = True
        await asyncio.gather(service.start_outside(), *(service.start(f) for f in started))
        session.status.update()
        if session.caps.watched_files_registration:
            await watch_files(ls)  # a round trip, before the slower remote start
        await asyncio.gather(*(service.start_remote(f) for f in started))

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def did_change_folders(
        ls: LanguageServer, params: types.DidChangeWorkspaceFoldersParams
    ) -> None:
        for removed in params.event.removed:
            await service.remove(removed.uri)
        added = [service.add(folder.uri) for folder in params.event.added]
        # Open documents may now belong to another folder: their settings and verdicts changed.
        session.reviewer.request_all()
        if not folders.outside.started:
            return  # before `initialized`: it starts every folder known by then
        for folder in added:
            await service.start(folder)
        for folder in added:
            await service.start_remote(folder)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: LanguageServer, params: types.DidChangeConfigurationParams
    ) -> None:
        await asyncio.gather(service.reload(folders.outside), *(service.reload(f) for f in folders))
        session.reviewer.request_all()

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: LanguageServer, params: None) -> None:
        session.testgen.cancel_all()
        await asyncio.gather(*(service.stop(f) for f in folders))
