"""GantryServer: the language server's state, mutated only on the event loop, and its start-up.

Engines run in threads on immutable snapshots; features are thin adapters registered by
`features.register_all`.
"""

from __future__ import annotations

import faulthandler
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_server import __version__, framing
from lsp_server.convert import converter
from lsp_server.protocol import GantryProtocol
from lsp_server.services.reviewer import Engine
from lsp_server.session import Session

log = logging.getLogger("gantry")


class GantryServer(LanguageServer):
    """pygls' server with Gantry's protocol and converter, and the session its features share."""

    def __init__(self, *, trust_workspace: bool = False, engines: Sequence[Engine] = ()) -> None:
        super().__init__(
            name="gantry",
            version=__version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=GantryProtocol,
            converter_factory=converter,
        )
        self.session = Session(self, trust_workspace=trust_workspace, engines=engines)


def create_server(*, trust_workspace: bool = False, engines: Sequence[Engine] = ()) -> GantryServer:
    """The server with every feature registered; `engines` review open documents beside the
    local review, each in its own diagnostics slot."""
    from lsp_server import features

    server = GantryServer(trust_workspace=trust_workspace, engines=engines)
    features.register_all(server, server.session)
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
        for folder in server.session.folders:
            if folder.indexer is not None:
                folder.indexer.halt(5.0)
        os._exit(128 + signal.SIGTERM)

    threading.Thread(target=leave, name="gantry-sigterm", daemon=True).start()


def serve(tcp: tuple[str, int] | None = None, *, trust_workspace: bool = False) -> int:
    return run(create_server(trust_workspace=trust_workspace), tcp)


def run(server: GantryServer, tcp: tuple[str, int] | None = None) -> int:
    """Serve one client on stdio (or TCP) until it leaves."""
    faulthandler.enable()  # a crash in native code (SQLite, tree-sitter) leaves a trace on stderr
    configure_logging()
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
