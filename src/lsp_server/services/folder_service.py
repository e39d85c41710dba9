"""Starting, reconfiguring and stopping workspace folders: their settings and their stores.

Each folder's settings come from the user's config file, the folder's project files (restricted
keys withheld unless the folder is trusted), then initializationOptions, then the editor's
`workspace/configuration` for that folder (section "gantry"). Every invalid value is reported and
defaulted.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs
from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_server.capabilities import ClientCaps
from lsp_server.config import load_settings, store_path
from lsp_server.executors import Executors
from lsp_server.services.folders import Folder, Folders, folder_root
from lsp_server.services.indexing import IndexerService
from lsp_server.services.remote import RemoteService
from lsp_server.services.status import StatusReporter

if TYPE_CHECKING:
    from lsp_server.store import Store

log = logging.getLogger("gantry.folders")
_CONFIG_TIMEOUT_S = 5.0  # a client that never answers workspace/configuration must not stall us


@attrs.define
class ClientSetup:
    """What `initialize` and the command line said, for every folder."""

    caps: ClientCaps = attrs.field(factory=ClientCaps)
    init_options: object = None
    trust_workspace: bool = False
    """`gantry serve --trust-workspace`: the workspace's settings may name programs, URLs and
    credentials without `gantry trust` (CI that owns its repository)."""


def _section(options: object) -> object:
    """initializationOptions may be the settings themselves or {"gantry": settings}."""
    if isinstance(options, dict) and isinstance(options.get("gantry"), dict):
        return options["gantry"]
    return options


def _dismissed(store: Store) -> frozenset[str]:
    return frozenset(
        fp for fp, v in store.verdicts().items() if v.verdict in ("dismissed", "false_positive")
    )


def _open_store(folder: Folder) -> tuple[Store, frozenset[str]]:
    """Open the store cheaply (reviews wait for its verdicts); `verify_store` checks it fully.
    In a thread: the store's modules take tens of ms to import."""
    from lsp_server.store import Store

    path = store_path(folder.root, folder.settings)
    try:
        store = Store.open(path, thorough=False)
        return store, _dismissed(store)
    except sqlite3.DatabaseError:  # damage the cheap checks missed: the full open recovers
        store = Store.open(path)
        return store, _dismissed(store)


class FolderService:
    def __init__(
        self,
        server: LanguageServer,
        folders: Folders,
        status: StatusReporter,
        executors: Executors,
        setup: ClientSetup,
        notify_user: Callable[[str], None],
    ) -> None:
        self._server = server
        self._folders = folders
        self._status = status
        self._executors = executors
        self._setup = setup
        self._notify_user = notify_user

    def add(self, uri: str) -> Folder:
        """A new folder, known to `folders` at once (documents in it wait for its settings);
        `start` it next."""
        folder = Folder(uri=uri, root=folder_root(uri))
        folder.indexer = IndexerService(
            folder,
            self._server,
            self._status,
            self._executors.background,
            functools.partial(self.verify_store, folder),
        )
        folder.remote = RemoteService(
            folder, self._status, self._executors.remote, self._notify_user
        )
        self._folders.add(folder)
        self._update_starting()
        return folder

    async def start(self, folder: Folder) -> None:
        if folder.started:
            return
        folder.started = True
        await self.reload(folder)
        folder.configured.set()  # the first reviews run while the store opens
        await self.open_store(folder)
        folder.ready.set()
        self._update_starting()
        if folder.indexer is not None:
            folder.indexer.start()

    async def start_remote(self, folder: Folder) -> None:
        """The slower part of a start, after the editor is served (it imports the dispatcher)."""
        if folder.remote is not None:
            await folder.remote.start()

    async def start_outside(self) -> None:
        """Settings for files outside every folder: the user's and the editor's only."""
        outside = self._folders.outside
        await self.reload(outside)
        outside.configured.set()
        outside.ready.set()
        self._update_starting()

    async def stop(self, folder: Folder) -> None:
        """Stop a folder's remote side and indexing, then close its store (unless indexing is
        still writing to it: then the store is left to the process exit)."""
        if folder.remote is not None:
            await folder.remote.stop()
        if folder.indexer is not None and not await folder.indexer.stop():
            log.warning("indexing %s did not stop in time; its store is left open", folder.name)
        elif folder.store is not None:
            folder.store.close()
            folder.store = None

    async def remove(self, uri: str) -> None:
        folder = self._folders.remove(uri)
        self._update_starting()
        if folder is not None:
            await self.stop(folder)

    async def reload(self, folder: Folder) -> None:
        editor = await self._editor_configuration(folder)
        # On the review pool: the folder's reviews wait for its settings (and verdicts).
        loaded = await self._executors.review.run(
            functools.partial(load_settings, trust_workspace=self._setup.trust_workspace),
            folder.root,
            _section(self._setup.init_options),
            editor,
        )
        folder.settings = loaded.settings
        logging.getLogger().setLevel(loaded.settings.log_level.upper())
        for problem in loaded.problems:
            self._notify_user(f"invalid setting {problem}")
        withheld = loaded.withheld_message()
        if withheld is not None and withheld != folder.withheld_notice:
            self._notify_user(withheld)  # once, not on every reload
        folder.withheld_notice = withheld

    async def _editor_configuration(self, folder: Folder) -> object:
        if not self._setup.caps.configuration:
            return None
        item = types.ConfigurationItem(scope_uri=folder.uri, section="gantry")
        try:
            result = await asyncio.wait_for(
                self._server.workspace_configuration_async(types.ConfigurationParams(items=[item])),
                _CONFIG_TIMEOUT_S,
            )
        except Exception as exc:  # a refusal or a timeout: project settings still apply
            log.warning("workspace/configuration failed: %s", exc)
            return None
        return result[0] if result else None

    async def open_store(self, folder: Folder, *, create: bool = False) -> None:
        """Open the folder's store; a session that does not index (`gantry check`) opens one
        that exists, for its verdicts, and creates none unless asked to (a first dismissal).
        Files outside every folder have no store."""
        settings = folder.settings
        if folder.root is None:
            return
        if not (create or settings.index.enabled or store_path(folder.root, settings).exists()):
            return
        try:
            folder.store, dismissed = await self._executors.review.run(_open_store, folder)
            folder.dismissed = folder.dismissed | dismissed  # keep this session's dismissals
        except Exception as exc:  # no store: reviews still work, verdicts are not remembered
            log.exception("cannot open the context store of %s", folder.name)
            self._status.set_problem("store", f"the context store cannot be opened ({exc})")
            return
        if folder.store.recovery_message:
            self._notify_user(folder.store.recovery_message)

    async def verify_store(self, folder: Folder) -> None:
        """The whole-file integrity check, after reviews have started and before indexing
        writes."""
        if folder.store is None:
            return
        try:
            store = await self._executors.background.run(folder.store.verify)
        except Exception:
            log.exception("verifying the context store of %s failed", folder.name)
            return
        if store is not folder.store:
            folder.store = store
            folder.dismissed = folder.dismissed | await self._executors.background.run(
                _dismissed, store
            )
            if store.recovery_message:
                self._notify_user(store.recovery_message)

    def _update_starting(self) -> None:
        self._status.starting = self._folders.starting
        self._status.update()
