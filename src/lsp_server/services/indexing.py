"""Keeps a workspace folder's index in its context store current: everything once after the
folder starts, then the files that are saved or that change on disk."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_server.analysis.languages import EXTENSIONS
from lsp_server.executors import Pool
from lsp_server.services.folders import Folder
from lsp_server.services.status import StatusReporter
from lsp_server.tasks import TaskSet

log = logging.getLogger("gantry.indexing")


class IndexerService:
    def __init__(
        self,
        folder: Folder,
        server: LanguageServer,
        status: StatusReporter,
        pool: Pool,
        verify_store: Callable[[], Awaitable[None]],
    ) -> None:
        self._folder = folder
        self._server = server
        self._status = status
        self._pool = pool
        self._verify_store = verify_store
        """The whole-file integrity check: the index is only ever written to a sound file."""
        self._cancel = threading.Event()
        self._busy = threading.Lock()  # held by the thread that indexes
        self._full: asyncio.Task | None = None
        self._lock = asyncio.Lock()  # one indexing pass at a time: the store has one writer
        self._saves = TaskSet(log)

    def _indexer(self):
        """Called in a thread: the indexer's modules take tens of ms to import."""
        from lsp_server.analysis.indexer import Indexer

        folder = self._folder
        if folder.store is None or folder.root is None or not folder.settings.index.enabled:
            return None
        return Indexer(folder.store, folder.root, folder.settings)

    def start(self) -> None:
        if self._full is None or self._full.done():
            self._status.indexing += 1  # before anyone can see "ready" in between
            self._status.update()
            self._full = asyncio.create_task(self._index_all())

    async def stop(self, timeout: float = 10.0) -> bool:
        """Cancel indexing; True once no thread writes to the store any more, False if one
        still does after `timeout` seconds (then the store must be left open)."""
        self._cancel.set()
        try:
            await asyncio.wait_for(self._lock.acquire(), timeout)
        except TimeoutError:
            return False
        self._lock.release()
        return True

    def halt(self, timeout: float = 10.0) -> bool:
        """stop() from off the event loop (on SIGTERM): cancel indexing and wait until no thread
        indexes, its process pool shut down; False if one still does after `timeout` seconds."""
        self._cancel.set()
        if not self._busy.acquire(timeout=timeout):
            return False
        self._busy.release()
        return True

    def _run(self, index, *args):
        with self._busy:
            return index(*args)

    def saved(self, path: Path) -> None:
        self._saves.spawn(self.index_paths([path]), f"indexing {path}")

    async def _index_all(self) -> None:
        status = self._status
        loop = asyncio.get_running_loop()
        async with self._lock:
            try:
                await self._verify_store()
                indexer = await self._pool.run(self._indexer)
                if indexer is None:
                    return
                async with status.progress("Gantry: indexing") as report:

                    def progress(done: int, total: int, path: object) -> None:
                        if done % 50 == 0 or done == total:
                            percent = int(100 * done / total) if total else 100
                            loop.call_soon_threadsafe(report, f"{done}/{total} files", percent)

                    try:
                        stats = await self._pool.run(
                            self._run, indexer.index_all, progress, self._cancel
                        )
                    except asyncio.CancelledError:
                        # The loop is closing (`exit`, stdin closed) and joins this thread
                        # before the process ends: stop it now rather than when it is done.
                        self._cancel.set()
                        raise
                log.info("indexed %s: %s", self._folder.name, stats)
                self._note_skipped(stats)
            except Exception:
                log.exception("indexing failed")
                status.set_problem("index", "indexing the workspace failed; see the server log")
            finally:
                status.indexing -= 1
                status.update()

    def _note_skipped(self, stats) -> None:
        """One informational line for files that could not be indexed (ignored ones are not
        news), not one per file."""
        skipped = {reason: n for reason, n in stats.files_skipped.items() if reason != "ignored"}
        if skipped:
            parts = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
            self._server.window_log_message(
                types.LogMessageParams(
                    type=types.MessageType.Info,
                    message=f"Gantry: indexed {stats.files_parsed + stats.files_reused} files "
                    f"in {self._folder.name}; "
                    f"skipped {sum(skipped.values())} ({parts})",
                )
            )

    async def index_paths(self, paths: list[Path]) -> None:
        async with self._lock:
            try:
                indexer = await self._pool.run(self._indexer)
                if indexer is None or not paths:
                    return
                await self._pool.run(self._run, indexer.index_paths, paths)
            except Exception:
                log.exception("indexing %s failed", paths)


async def watch_files(server: LanguageServer) -> None:
    """Ask the client to tell us about files changing on disk (branch switches, tools)."""
    registration = types.Registration(
        id="gantry-watched-files",
        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
        register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=_watchers()),
    )
    try:
        await server.client_register_capability_async(
            types.RegistrationParams(registrations=[registration])
        )
    except Exception as exc:
        log.warning("the client refused to watch files: %s", exc)


def _watchers() -> list[types.FileSystemWatcher]:
    sources = "**/*{" + ",".join(sorted(EXTENSIONS)) + "}"
    globs = [sources, "**/.gitignore", "**/{pyproject,gantry}.toml"]
    return [types.FileSystemWatcher(glob_pattern=g) for g in globs]
