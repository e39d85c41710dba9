"""Edit -> diagnostics: review documents off the event loop and publish with their version.

A document is reviewed at once when nothing is running for it; changes that arrive while a
review runs coalesce into exactly one follow-up review of the latest text. That is the debounce:
typing never queues more than one pending review, and an idle editor waits for nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
from lsprotocol import types

from lsp_server.analysis.fingerprint import IncrementalParser
from lsp_server.features.convert import diagnostic, in_cell
from lsp_server.review import local, ruff_engine
from lsp_server.review.findings import Finding, Snapshot

if TYPE_CHECKING:
    from lsp_server.config import Settings
    from lsp_server.server import GantryServer

log = logging.getLogger("gantry.diagnostics")
_CHUNK_FILES = 256
"""Files per ruff run in a review of files on disk: ruff lints each chunk in parallel inside,
while the previous chunk's findings are fingerprinted and published."""
_PARALLEL_RUNS = 2


@attrs.frozen
class OnDiskReview:
    files: tuple[Path, ...] = ()
    """The files reviewed (published, or reviewed from the editor's text if open)."""
    skipped: tuple[tuple[Path, str], ...] = ()
    findings: int = 0
    problem: str | None = None
    """Ruff could not run: what was not reviewed is not in `files`."""


class Reviewer:
    def __init__(self, server: GantryServer) -> None:
        self.server = server
        self._running: dict[str, asyncio.Task] = {}
        self._again: set[str] = set()
        self._skip_noted: set[str] = set()
        self._trees: dict[str, IncrementalParser] = {}
        """Each open document's parser, kept between its reviews (one at a time)."""
        self._on_disk = 0

    @property
    def pending(self) -> int:
        return len(self._running) + self._on_disk

    async def review_on_disk(self, paths: list[Path], *, fingerprints: bool = True) -> OnDiskReview:
        """Review the files under `paths` as they are on disk, as `ruff check PATHS` would select
        them, a chunk per ruff run; open documents are reviewed from the editor's text instead.
        Every file reviewed gets a publishDiagnostics, an empty one when it is clean. Without
        `fingerprints` (the caller does not read them) they are computed only to leave out the
        findings the user dismissed."""
        server = self.server
        await server.ready.wait()
        if not paths:
            return OnDiskReview()
        settings = server.settings
        root = server.root or (paths[0] if paths[0].is_dir() else paths[0].parent)
        self._on_disk += len(paths)
        self._report()
        try:
            selection = await asyncio.to_thread(local.select_files, root, paths, settings)
        except (ruff_engine.RuffUnavailable, ruff_engine.RuffFailed) as exc:
            selection, problem = None, str(exc)
        finally:
            self._on_disk -= len(paths)
        if selection is None:
            self._report()
            server.status.set_problem("ruff", problem)
            return OnDiskReview(problem=problem)
        files: list[Path] = []
        reviewed: list[Path] = []
        for path in selection.files:
            uri = path.as_uri()
            if uri in server.workspace.text_documents:
                self.request(uri)
                reviewed.append(path)
            else:
                files.append(path)
        self._on_disk += len(files)
        self._report()
        limit = asyncio.Semaphore(_PARALLEL_RUNS)
        review = functools.partial(
            local.review_files, fingerprints=fingerprints or bool(server.dismissed)
        )

        async def one(chunk: list[Path]) -> local.FilesReview:
            try:
                async with limit:
                    result = await asyncio.to_thread(review, root, chunk, settings)
                for file in result.files:
                    self._publish_file(file, settings)
                    reviewed.append(file.path)
                return result
            finally:
                self._on_disk -= len(chunk)
                self._report()

        chunks = [files[i : i + _CHUNK_FILES] for i in range(0, len(files), _CHUNK_FILES)]
        results = await asyncio.gather(*(one(chunk) for chunk in chunks))
        problem = next((r.problem for r in results if r.problem is not None), None)
        self.server.status.set_problem("ruff", problem)
        return OnDiskReview(
            files=tuple(reviewed),
            skipped=(*selection.skipped, *(item for r in results for item in r.failed)),
            findings=sum(len(file.findings) for r in results for file in r.files),
            problem=problem,
        )

    def _publish_file(self, review: local.FileReview, settings: Settings) -> None:
        """Publish one file reviewed on disk, unless the editor opened it meanwhile (its text
        wins)."""
        uri = review.path.as_uri()
        if uri in self.server.workspace.text_documents:
            return
        if review.source is None:
            self.server.published.pop(uri, None)
            self.server.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
            )
            return
        source = review.source
        snapshot = Snapshot(uri, str(review.path), None, source.text, "python", settings)
        self._publish(snapshot, review.findings, source.cells, review.lines)

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
            await self.server.configured.wait()
            while True:
                self._again.discard(uri)
                snapshot = self.server.snapshot(uri)
                if snapshot is None:
                    return
                trees = self._trees.setdefault(uri, IncrementalParser())
                result = await asyncio.to_thread(local.review, snapshot, self.server.root, trees)
                await self.server.ready.wait()  # the verdicts: what the user dismissed stays out
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
        self._publish(snapshot, findings)
        self._report()

    def _publish(
        self,
        snapshot: Snapshot,
        findings: tuple[Finding, ...],
        cells: dict[int, int] | None = None,
        lines: Sequence[str] | None = None,
    ) -> None:
        dismissed = self.server.dismissed
        kept = tuple(f for f in findings if f.fingerprint not in dismissed)
        self.server.published[snapshot.uri] = (snapshot, kept)
        codec, lines = self.server.workspace.position_codec, lines or snapshot.lines
        diagnostics = [diagnostic(codec, lines, finding) for finding in kept]
        if cells:
            diagnostics = [in_cell(d, cells) for d in diagnostics]
        self.server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=snapshot.uri, version=snapshot.version, diagnostics=diagnostics
            )
        )

    def forget(self, uri: str) -> None:
        self.server.published.pop(uri, None)
        self._skip_noted.discard(uri)
        self._trees.pop(uri, None)
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
