"""Keeps the context store's index of the workspace current: everything once after start-up,
then the files that are saved or that change on disk (workspace/didChangeWatchedFiles)."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.uris import to_fs_path

from lsp_server.analysis.languages import EXTENSIONS
from lsp_server.features.lifecycle import reload_settings, verify_store

if TYPE_CHECKING:
    from lsp_server.server import GantryServer

log = logging.getLogger("gantry.indexing")
_SETTINGS_FILES = frozenset({"pyproject.toml", "gantry.toml"})


class IndexerService:
    def __init__(self, server: GantryServer) -> None:
        self.server = server
        self._cancel = threading.Event()
        self._busy = threading.Lock()  # held by the thread that indexes
        self._full: asyncio.Task | None = None
        self._lock = asyncio.Lock()  # one indexing pass at a time: the store has one writer
        self._tasks: set[asyncio.Task] = set()  # the loop keeps only weak references

    def _indexer(self):
        """Called in a thread: the indexer's modules take tens of ms to import."""
        from lsp_server.analysis.indexer import Indexer

        server = self.server
        if server.store is None or server.root is None or not server.settings.index.enabled:
            return None
        return Indexer(server.store, server.root, server.settings)

    def start(self) -> None:
        if self._full is None or self._full.done():
            self.server.status.indexing = True  # before anyone can see "ready" in between
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

    def saved(self, uri: str) -> None:
        if path := to_fs_path(uri):
            task = asyncio.create_task(self.index_paths([Path(path)]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def watch_files(self) -> None:
        """Ask the client to tell us about files changing on disk (branch switches, tools)."""
        if not self.server.caps.watched_files_registration:
            return
        registration = types.Registration(
            id="gantry-watched-files",
            method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
            register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=_watchers()),
        )
        try:
            await self.server.client_register_capability_async(
                types.RegistrationParams(registrations=[registration])
            )
        except Exception as exc:
            log.warning("the client refused to watch files: %s", exc)

    async def _index_all(self) -> None:
        status = self.server.status
        loop = asyncio.get_running_loop()
        async with self._lock:
            status.indexing = True
            status.update()
            try:
                await verify_store(self.server)  # the index is only ever written to a sound file
                indexer = await asyncio.to_thread(self._indexer)
                if indexer is None:
                    return
                async with status.progress("Gantry: indexing") as report:

                    def progress(done: int, total: int, path: object) -> None:
                        if done % 50 == 0 or done == total:
                            percent = int(100 * done / total) if total else 100
                            loop.call_soon_threadsafe(report, f"{done}/{total} files", percent)

                    try:
                        stats = await asyncio.to_thread(
                            self._run, indexer.index_all, progress, self._cancel
                        )
                    except asyncio.CancelledError:
                        # The loop is closing (`exit`, stdin closed) and joins this thread
                        # before the process ends: stop it now rather than when it is done.
                        self._cancel.set()
                        raise
                log.info("indexed the workspace: %s", stats)
                self._note_skipped(stats)
            except Exception:
                log.exception("indexing failed")
                status.set_problem("index", "indexing the workspace failed; see the server log")
            finally:
                status.indexing = False
                status.update()

    def _note_skipped(self, stats) -> None:
        """One informational line for files that could not be indexed (ignored ones are not
        news), not one per file."""
        skipped = {reason: n for reason, n in stats.files_skipped.items() if reason != "ignored"}
        if skipped:
            parts = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
            self.server.window_log_message(
                types.LogMessageParams(
                    type=types.MessageType.Info,
                    message=f"Gantry: indexed {stats.files_parsed + stats.files_reused} files; "
                    f"skipped {sum(skipped.values())} ({parts})",
                )
            )

    async def index_paths(self, paths: list[Path]) -> None:
        async with self._lock:
            try:
                indexer = await asyncio.to_thread(self._indexer)
                if indexer is None or not paths:
                    return
                await asyncio.to_thread(self._run, indexer.index_paths, paths)
            except Exception:
                log.exception("indexing %s failed", paths)


def _watchers() -> list[types.FileSystemWatcher]:
    sources = "**/*{" + ",".join(sorted(EXTENSIONS)) + "}"
    globs = [sources, "**/.gitignore", "**/{pyproject,gantry}.toml"]
    return [types.FileSystemWatcher(glob_pattern=g) for g in globs]


def register(server: GantryServer) -> None:
    service = server.indexer_service

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def did_change_watched_files(
        ls: GantryServer, params: types.DidChangeWatchedFilesParams
    ) -> None:
        paths = [Path(to_fs_path(change.uri) or change.uri) for change in params.changes]
        if any(p.name in _SETTINGS_FILES for p in paths):
            await reload_settings(ls)
            ls.reviewer.request_all()
        if any(p.name == ".gitignore" for p in paths):
            service.start()  # what is ignored changed: walk everything again
        else:
            await service.index_paths([p for p in paths if p.name not in _SETTINGS_FILES])
