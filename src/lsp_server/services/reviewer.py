"""Edit -> diagnostics: review documents off the event loop and publish with their version.

Each engine reviews each document on its own: a document is reviewed at once when nothing is
running for it in that engine; changes that arrive while a review runs coalesce into exactly
one follow-up review of the latest text. That is the debounce: typing never queues more than
one pending review per engine, and an idle editor waits for nothing. Results go to the engine's
slot in the publisher, so a slow engine never holds back a fast one.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import attrs
from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_server.executors import Executors, Pool
from lsp_server.review import local, ruff_engine
from lsp_server.review.findings import Snapshot
from lsp_server.services.folders import Folder, Folders
from lsp_server.services.publisher import Publisher
from lsp_server.services.status import StatusReporter

log = logging.getLogger("gantry.diagnostics")
_CHUNK_FILES = 256
"""Files per ruff run in a review of files on disk: ruff lints each chunk in parallel inside,
while the previous chunk's findings are fingerprinted and published."""
_PARALLEL_RUNS = 2


class Engine(Protocol):
    """A review engine for open documents. `review` runs in a thread, one review per document
    at a time; what it returns is published in the engine's `source` slot."""

    source: str

    def review(self, snapshot: Snapshot, root: Path | None) -> local.LocalReview: ...

    def forget(self, uri: str) -> None:
        """The document was closed."""


@attrs.frozen
class OnDiskReview:
    files: tuple[Path, ...] = ()
    """The files reviewed (published, or reviewed from the editor's text if open)."""
    skipped: tuple[tuple[Path, str], ...] = ()
    findings: int = 0
    problem: str | None = None
    """Ruff could not run: what was not reviewed is not in `files`."""

    def __add__(self, other: OnDiskReview) -> OnDiskReview:
        return OnDiskReview(
            files=self.files + other.files,
            skipped=self.skipped + other.skipped,
            findings=self.findings + other.findings,
            problem=self.problem or other.problem,
        )


class Reviewer:
    def __init__(
        self,
        server: LanguageServer,
        folders: Folders,
        publisher: Publisher,
        status: StatusReporter,
        executors: Executors,
        engines: Sequence[Engine],
        notify_user: Callable[[str, types.MessageType], None],
    ) -> None:
        self._server = server
        self._folders = folders
        self._publisher = publisher
        self._status = status
        self._pool: Pool = executors.review
        self._engines = tuple(engines)
        self._notify_user = notify_user
        self._running: dict[tuple[str, str], asyncio.Task] = {}
        self._again: set[tuple[str, str]] = set()
        self._skip_noted: set[str] = set()
        self._on_disk = 0

    @property
    def pending(self) -> int:
        return len(self._running) + self._on_disk

    def request(self, uri: str) -> None:
        for engine in self._engines:
            key = (engine.source, uri)
            if key in self._running:
                self._again.add(key)
            else:
                self._running[key] = asyncio.create_task(self._review(engine, uri))
        self._report()

    def request_all(self, folder: Folder | None = None) -> None:
        """Review every open document again (in `folder` only, when given)."""
        for uri in list(self._server.workspace.text_documents):
            if folder is None or self._folders.for_uri(uri) is folder:
                self.request(uri)

    async def _review(self, engine: Engine, uri: str) -> None:
        key = (engine.source, uri)
        try:
            while True:
                self._again.discard(key)
                folder = self._folders.for_uri(uri)
                await folder.configured.wait()
                snapshot = self._folders.snapshot(self._server.workspace, uri)
                if snapshot is None:
                    return
                result = await self._pool.run(engine.review, snapshot, folder.root)
                await folder.ready.wait()  # the verdicts: what the user dismissed stays out
                self._apply(engine, snapshot, result)
                if key not in self._again:
                    return
        except Exception:  # a bug in one review must not take the server down
            log.exception("%s review of %s failed", engine.source, uri)
            self._notify_user(
                f"reviewing {uri} failed; see the server log", types.MessageType.Error
            )
        finally:
            self._running.pop(key, None)
            self._report()

    def _apply(self, engine: Engine, snapshot: Snapshot, result: local.LocalReview) -> None:
        if result.skipped is not None and snapshot.uri not in self._skip_noted:
            self._skip_noted.add(snapshot.uri)
            self._notify_user(
                f"{snapshot.path} is not reviewed: {result.skipped}", types.MessageType.Info
            )
        self._status.set_problem(engine.source, result.problem)
        self._publisher.put(engine.source, snapshot, result.findings)

    def forget(self, uri: str) -> None:
        for engine in self._engines:
            engine.forget(uri)
        self._skip_noted.discard(uri)
        self._publisher.clear(uri)
        self._report()

    async def review_on_disk(self, paths: list[Path], *, fingerprints: bool = True) -> OnDiskReview:
        """Review the files under `paths` as they are on disk, as `ruff check PATHS` would select
        them, each with its workspace folder's settings, a chunk per ruff run; open documents
        are reviewed from the editor's text instead. Every file reviewed gets a
        publishDiagnostics, an empty one when it is clean. Without `fingerprints` (the caller
        does not read them) they are computed only to leave out the findings the user
        dismissed."""
        by_folder: dict[Folder, list[Path]] = {}
        for path in paths:
            by_folder.setdefault(self._folders.for_path(path.absolute()), []).append(path)
        result = OnDiskReview()
        for folder, inside in by_folder.items():
            result += await self._review_folder_on_disk(folder, inside, fingerprints)
        return result

    async def _review_folder_on_disk(
        self, folder: Folder, paths: list[Path], fingerprints: bool
    ) -> OnDiskReview:
        await folder.ready.wait()
        settings = folder.settings
        root = folder.root or (paths[0] if paths[0].is_dir() else paths[0].parent)
        self._on_disk += len(paths)
        self._report()
        try:
            selection = await self._pool.run(local.select_files, root, paths, settings)
        except (ruff_engine.RuffUnavailable, ruff_engine.RuffFailed) as exc:
            selection, problem = None, str(exc)
        finally:
            self._on_disk -= len(paths)
        if selection is None:
            self._report()
            self._status.set_problem("ruff", problem)
            return OnDiskReview(problem=problem)
        files: list[Path] = []
        reviewed: list[Path] = []
        for path in selection.files:
            uri = path.as_uri()
            if uri in self._server.workspace.text_documents:
                self.request(uri)
                reviewed.append(path)
            else:
                files.append(path)
        self._on_disk += len(files)
        self._report()
        limit = asyncio.Semaphore(_PARALLEL_RUNS)
        review = functools.partial(
            local.review_files, fingerprints=fingerprints or bool(folder.dismissed)
        )

        async def one(chunk: list[Path]) -> local.FilesReview:
            try:
                async with limit:
                    result = await self._pool.run(review, root, chunk, settings)
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
        self._status.set_problem("ruff", problem)
        return OnDiskReview(
            files=tuple(reviewed),
            skipped=(*selection.skipped, *(item for r in results for item in r.failed)),
            findings=sum(len(file.findings) for r in results for file in r.files),
            problem=problem,
        )

    def _publish_file(self, review: local.FileReview, settings) -> None:
        """Publish one file reviewed on disk, unless the editor opened it meanwhile (its text
        wins)."""
        uri = review.path.as_uri()
        if uri in self._server.workspace.text_documents:
            return
        if review.source is None:
            self._publisher.clear(uri)
            return
        source = review.source
        snapshot = Snapshot(uri, str(review.path), None, source.text, "python", settings)
        self._publisher.put(
            local.LocalEngine.source,
            snapshot,
            review.findings,
            cells=source.cells,
            lines=review.lines,
        )

    def _report(self) -> None:
        self._status.reviewing = self.pending
        self._status.update()
