"""Edit -> diagnostics: review documents off the event loop and publish with their version.

A document is reviewed at once when nothing is running for it; changes that arrive while a
review runs coalesce into exactly one follow-up review of the latest text. That is the debounce:
typing never queues more than one pending review, and an idle editor waits for nothing.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types

from lsp_server.analysis.languages import language_for_path
from lsp_server.analysis.workspace_files import read_source
from lsp_server.features.convert import diagnostic
from lsp_server.review import local
from lsp_server.review.findings import Finding, Snapshot

if TYPE_CHECKING:
    from lsp_server.server import GantryServer

log = logging.getLogger("gantry.diagnostics")


class Reviewer:
    def __init__(self, server: GantryServer) -> None:
        self.server = server
        self._running: dict[str, asyncio.Task] = {}
        self._again: set[str] = set()
        self._skip_noted: set[str] = set()
        self._on_disk = 0

    @property
    def pending(self) -> int:
        return len(self._running) + self._on_disk

    async def review_on_disk(self, paths: list[Path]) -> int:
        """Review files as they are on disk (a workspace review), two at a time; open documents
        are reviewed from the editor's text instead. Returns the number of findings published."""
        server, published = self.server, 0
        limit = asyncio.Semaphore(2)

        async def one(path: Path) -> None:
            nonlocal published
            try:
                uri = path.as_uri()
                if uri in server.workspace.text_documents:
                    self.request(uri)
                    return
                async with limit:
                    max_size = server.settings.max_file_size
                    text, _ = await asyncio.to_thread(read_source, path, max_size)
                    if text is None:
                        return
                    language = language_for_path(path)
                    snapshot = Snapshot(uri, str(path), None, text, language, server.settings)
                    result = await asyncio.to_thread(local.review, snapshot)
                if uri not in server.workspace.text_documents:  # opened meanwhile: that wins
                    self.publish(snapshot, result.findings)
                    published += len(result.findings)
            finally:
                self._on_disk -= 1
                self._report()

        await server.ready.wait()
        self._on_disk += len(paths)
        self._report()
        await asyncio.gather(*(one(path) for path in paths))
        return published

    def request(self, uri: str) -> None:
        if uri in self._running:
            self._again.add(uri)
            return
        self._running[uri] = asyncio.create_task(self._review(uri))
        self._report()

    def request_all(self) -> None:
        for uri in list(self.server.workspace.text_documents):
            self.request(uri)

    async def _review(self, uri: str) -> None:
        try:
            await self.server.ready.wait()
            while True:
                self._again.discard(uri)
                snapshot = self.server.snapshot(uri)
                if snapshot is None:
                    return
                result = await asyncio.to_thread(local.review, snapshot)
                self._apply(snapshot, result)
                if uri not in self._again:
                    return
        except Exception:  # a bug in one review must not take the server down
            log.exception("review of %s failed", uri)
            self.server.notify_user(
                f"reviewing {uri} failed; see the server log", types.MessageType.Error
            )
        finally:
            self._running.pop(uri, None)
            self._report()

    def _apply(self, snapshot: Snapshot, result: local.LocalReview) -> None:
        current = self.server.workspace.text_documents.get(snapshot.uri)
        if current is None or current.version != snapshot.version:
            return  # stale: a newer review is already asked for
        if result.skipped is not None and snapshot.uri not in self._skip_noted:
            self._skip_noted.add(snapshot.uri)
            self.server.notify_user(
                f"{snapshot.path} is not reviewed: {result.skipped}", types.MessageType.Info
            )
        self.server.status.set_problem("ruff", result.problem)
        self.publish(snapshot, result.findings)

    def publish(self, snapshot: Snapshot, findings: tuple[Finding, ...]) -> None:
        """Publish findings for a snapshot, leaving out those the user dismissed."""
        dismissed = self.server.dismissed
        kept = tuple(f for f in findings if f.fingerprint not in dismissed)
        self.server.published[snapshot.uri] = (snapshot, kept)
        codec, lines = self.server.workspace.position_codec, snapshot.lines
        self.server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=snapshot.uri,
                version=snapshot.version,
                diagnostics=[diagnostic(codec, lines, finding) for finding in kept],
            )
        )
        self._report()

    def forget(self, uri: str) -> None:
        self.server.published.pop(uri, None)
        self._skip_noted.discard(uri)
        self.server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )
        self._report()

    def _report(self) -> None:
        self.server.status.reviewing = self.pending
        self.server.status.update()


def register(server: GantryServer) -> None:
    reviewer = server.reviewer

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: GantryServer, params: types.DidOpenTextDocumentParams) -> None:
        reviewer.request(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: GantryServer, params: types.DidChangeTextDocumentParams) -> None:
        reviewer.request(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: GantryServer, params: types.DidSaveTextDocumentParams) -> None:
        reviewer.request(params.text_document.uri)
        ls.indexer_service.saved(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(ls: GantryServer, params: types.DidCloseTextDocumentParams) -> None:
        reviewer.forget(params.text_document.uri)
