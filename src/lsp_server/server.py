"""GantryServer: the language server's state, mutated only on the event loop, and its start-up.

Engines run in threads on immutable snapshots; features are thin adapters registered by
`features.register_all`.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from lsp_server import __version__, framing
from lsp_server.analysis.languages import language_for_document
from lsp_server.capabilities import ClientCaps
from lsp_server.config import Settings
from lsp_server.features.convert import converter
from lsp_server.features.diagnostics import Reviewer
from lsp_server.features.indexing import IndexerService
from lsp_server.features.remote import RemoteService
from lsp_server.features.status import PublishedFindings, StatusReporter
from lsp_server.protocol import GantryProtocol
from lsp_server.review.findings import Snapshot

if TYPE_CHECKING:
    from lsp_server.store import Store

log = logging.getLogger("gantry")


class GantryServer(LanguageServer):
    def __init__(self, *, trust_workspace: bool = False) -> None:
        super().__init__(
            name="gantry",
            version=__version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=GantryProtocol,
            converter_factory=converter,
        )
        self.caps = ClientCaps()
        self.root: Path | None = None
        self.trust_workspace = trust_workspace
        """`gantry serve --trust-workspace`: the workspace's settings may name programs, URLs and
        credentials without `gantry trust` (CI that owns its repository)."""
        self.settings = Settings()
        self.withheld_notice: str | None = None
        """What the workspace's settings may not set, last said to the user (said once)."""
        self.init_options: object = None
        self.store: Store | None = None
        self.dismissed: frozenset[str] = frozenset()
        self.published = PublishedFindings()
        self.configured = asyncio.Event()
        """Set once settings are loaded: reviews may run."""
        self.ready = asyncio.Event()
        """Set once verdicts are loaded too: reviews publish only then."""
        self.status = StatusReporter(self)
        self.reviewer = Reviewer(self)
        self.indexer_service = IndexerService(self)
        self.remote = RemoteService(self)

    def snapshot(self, uri: str) -> Snapshot | None:
        """The document as it is now, or None when the client never opened it."""
        doc = self.workspace.text_documents.get(uri)
        if doc is None:
            return None
        path = to_fs_path(uri) or uri
        return Snapshot(
            uri=uri,
            path=path,
            version=doc.version,
            text=doc.source,
            language=language_for_document(path, doc.language_id),
            settings=self.settings,
        )

    def notify_user(self, message: str, kind=types.MessageType.Warning) -> None:
        log.log(logging.WARNING if kind <= types.MessageType.Warning else logging.INFO, message)
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"Gantry: {message}"))


def create_server(*, trust_workspace: bool = False) -> GantryServer:
    from lsp_server import features

    server = GantryServer(trust_workspace=trust_workspace)
    features.register_all(server)
    return server


def configure_logging(level: str = "warning") -> None:
    """Logs go to stderr: stdout belongs to the protocol. pygls logs whole messages (source
    code) at INFO, so it stays at WARNING unless debugging."""
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger().setLevel(level.upper())
    logging.getLogger("pygls").setLevel("DEBUG" if level == "debug" else "WARNING")
    # A cancel for a request that already finished is routine, not a warning.
    logging.getLogger("pygls.protocol.json_rpc").addFilter(
        lambda record: not record.getMessage().startswith("Cancel notification for unknown")
    )


def _tune_gc() -> None:
    """Once start-up has imported everything: those objects live as long as the process, so
    collections stop scanning them; and the young generation is collected every 10,000 objects,
    not 700, or a review of a finding-dense file (hundreds of thousands of short-lived, acyclic
    objects) spends a third of its time in full collections. It costs ~10 MB of peak RSS."""
    gc.freeze()
    gc.set_threshold(10_000, 20, 10)


def _on_sigterm(server: GantryServer) -> None:
    """SIGTERM: stop indexing so its process pool shuts down, then leave at once (a normal exit
    would wait for stdin to close). From a thread, so the interrupted loop carries on meanwhile;
    the store is left to the process exit, since verdicts are journalled as they are made."""

    def leave() -> None:
        server.indexer_service.halt(5.0)
        os._exit(128 + signal.SIGTERM)

    threading.Thread(target=leave, name="gantry-sigterm", daemon=True).start()


def serve(tcp: tuple[str, int] | None = None, *, trust_workspace: bool = False) -> int:
    faulthandler.enable()  # a crash in native code (SQLite, tree-sitter) leaves a trace on stderr
    configure_logging()
    server = create_server(trust_workspace=trust_workspace)
    _tune_gc()
    signal.signal(signal.SIGTERM, lambda *_: _on_sigterm(server))
    if tcp is not None:
        server.start_tcp(*tcp)
        return 0
    # Keep the real stdout for the protocol alone: a stray print() anywhere would corrupt it.
    protocol_out = sys.stdout.buffer
    sys.stdout = sys.stderr
    framing.start_io(server, stdin=sys.stdin.buffer, stdout=protocol_out)
    return 0
