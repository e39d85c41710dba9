"""initialize / initialized / configuration changes / shutdown: settings and the store.

Settings come from the user's config file, the project files (restricted keys withheld unless
the workspace is trusted), then initializationOptions, then the editor's
`workspace/configuration` (section "gantry"). Every invalid value is reported and defaulted.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.uris import to_fs_path

from lsp_server.capabilities import ClientCaps
from lsp_server.config import load_settings, store_path

if TYPE_CHECKING:
    from lsp_server.server import GantryServer
    from lsp_server.store import Store

log = logging.getLogger("gantry.lifecycle")
_CONFIG_TIMEOUT_S = 5.0  # a client that never answers workspace/configuration must not stall us


def _root(params: types.InitializeParams) -> Path | None:
    uri = None
    if params.workspace_folders:
        uri = params.workspace_folders[0].uri
    uri = uri or params.root_uri
    if uri:
        return Path(to_fs_path(uri) or uri)
    return Path(params.root_path) if params.root_path else None


def _section(options: object) -> object:
    """initializationOptions may be the settings themselves or {"gantry": settings}."""
    if isinstance(options, dict) and isinstance(options.get("gantry"), dict):
        return options["gantry"]
    return options


async def _editor_configuration(server: GantryServer) -> object:
    if not server.caps.configuration:
        return None
    try:
        result = await asyncio.wait_for(
            server.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section="gantry")])
            ),
            _CONFIG_TIMEOUT_S,
        )
    except Exception as exc:  # a refusal or a timeout: project settings still apply
        log.warning("workspace/configuration failed: %s", exc)
        return None
    return result[0] if result else None


async def reload_settings(server: GantryServer) -> None:
    editor = await _editor_configuration(server)
    loaded = await asyncio.to_thread(
        functools.partial(load_settings, trust_workspace=server.trust_workspace),
        server.root,
        _section(server.init_options),
        editor,
    )
    server.settings = loaded.settings
    logging.getLogger().setLevel(loaded.settings.log_level.upper())
    for problem in loaded.problems:
        server.notify_user(f"invalid setting {problem}")
    withheld = loaded.withheld_message()
    if withheld is not None and withheld != server.withheld_notice:
        server.notify_user(withheld)  # once, not on every reload
    server.withheld_notice = withheld


def _dismissed(store: Store) -> frozenset[str]:
    return frozenset(
        fp for fp, v in store.verdicts().items() if v.verdict in ("dismissed", "false_positive")
    )


def _open_store(server: GantryServer) -> tuple[Store, frozenset[str]]:
    """Open the store cheaply (reviews wait for its verdicts); `verify_store` checks it fully."""
    from lsp_server.store import Store

    path = store_path(server.root, server.settings)
    try:
        store = Store.open(path, thorough=False)
        return store, _dismissed(store)
    except sqlite3.DatabaseError:  # damage the cheap checks missed: the full open recovers
        store = Store.open(path)
        return store, _dismissed(store)


async def open_store(server: GantryServer, *, create: bool = False) -> None:
    """Open the workspace's store; a session that does not index (`gantry check`) opens one
    that exists, for its verdicts, and creates none unless asked to (a first dismissal)."""
    settings = server.settings
    if not (create or settings.index.enabled or store_path(server.root, settings).exists()):
        return
    try:
        server.store, dismissed = await asyncio.to_thread(_open_store, server)
        server.dismissed = server.dismissed | dismissed  # keep this session's dismissals
    except Exception as exc:  # no store: reviews still work, verdicts are not remembered
        log.exception("cannot open the context store")
        server.status.set_problem("store", f"the context store cannot be opened ({exc})")
        return
    if server.store.recovery_message:
        server.notify_user(server.store.recovery_message)


async def verify_store(server: GantryServer) -> None:
    """The whole-file integrity check, after reviews have started and before indexing writes."""
    if server.store is None:
        return
    try:
        store = await asyncio.to_thread(server.store.verify)
    except Exception:
        log.exception("verifying the context store failed")
        return
    if store is not server.store:
        server.store = store
        server.dismissed = server.dismissed | await asyncio.to_thread(_dismissed, store)
        if store.recovery_message:
            server.notify_user(store.recovery_message)


def register(server: GantryServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: GantryServer, params: types.InitializeParams) -> None:
        ls.caps = ClientCaps.from_lsp(params.capabilities)
        ls.root = _root(params)
        ls.init_options = params.initialization_options

    @server.feature(types.INITIALIZED)
    async def initialized(ls: GantryServer, params: types.InitializedParams) -> None:
        await reload_settings(ls)
        ls.configured.set()  # the first reviews run while the store opens
        await open_store(ls)
        ls.ready.set()
        ls.indexer_service.start()
        ls.status.update()
        await ls.indexer_service.watch_files()  # a round trip, before the slower remote start
        await ls.remote.start()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: GantryServer, params: types.DidChangeConfigurationParams
    ) -> None:
        await reload_settings(ls)
        ls.reviewer.request_all()

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: GantryServer, params: None) -> None:
        await ls.remote.stop()
        if not await ls.indexer_service.stop():
            log.warning("indexing did not stop in time; the store is left to the process exit")
        elif ls.store is not None:
            ls.store.close()
            ls.store = None
