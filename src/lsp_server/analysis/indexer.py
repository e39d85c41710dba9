"""Fills the store's content-addressed catalogue from the workspace.

A file is read only when its size or mtime changed, and parsed only when its content hash is
new, so a branch switch back and forth parses nothing the second time. Each batch of files is
committed together with the contents it needs, so an interrupted index never claims a file it
did not store. Large batches are parsed in a process pool; the store's writer thread commits.
"""

from __future__ import annotations

import collections
import ctypes
import itertools
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import attrs

from lsp_server.analysis.languages import language_for_path
from lsp_server.analysis.symbols import content_hash, count_lines, extract_content
from lsp_server.analysis.workspace_files import (
    IgnoreRules,
    Skip,
    read_source_bytes,
    walk_source_files,
)
from lsp_server.config import Settings
from lsp_server.store import ContentRecord, FileRecord, FileState, Store

Progress = Callable[[int, int, str], None]

POOL_WORKERS = 2
POOL_MIN_FILES = 64
"""Below this many files to parse, starting worker processes costs more than it saves."""
BATCH_FILES = 32
BATCH_BYTES = 512 * 1024
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@attrs.define
class IndexStats:
    files_seen: int = 0
    files_unchanged: int = 0
    """Same size and mtime as stored: not even read."""
    files_parsed: int = 0
    files_reused: int = 0
    """Read, but their content was already indexed (another path, another branch)."""
    files_skipped: collections.Counter[str] = attrs.Factory(collections.Counter)
    """Skip reason (ignored, binary, too large, not UTF-8) -> count. "ignored" counts ignored
    parseable files and ignored directories, each directory once."""
    files_removed: int = 0
    lines: int = 0
    """Lines of the files read (parsed or reused)."""
    symbols: int = 0
    seconds: float = 0.0
    cancelled: bool = False


@attrs.define
class _Batch:
    """Files read together; committed together with the new contents they need."""

    files: list[FileRecord] = attrs.Factory(list)
    to_parse: dict[str, tuple[str, bytes]] = attrs.Factory(dict)
    """content hash -> (language, bytes), for contents the store does not hold yet"""
    handled: int = 0
    """Paths this batch accounts for, unchanged and skipped ones included (for progress)."""
    last_path: str = ""
    size: int = 0


class Indexer:
    def __init__(self, store: Store, root: Path, settings: Settings) -> None:
        self.store = store
        self.root = root
        self.settings = settings

    def index_all(
        self, progress: Progress | None = None, cancel: threading.Event | None = None
    ) -> IndexStats:
        """Bring the whole workspace up to date. Paths gone from the workspace are removed from
        the store, unless the run was cancelled (then nothing is claimed or forgotten wrongly)."""
        started = time.perf_counter()
        stats = IndexStats()
        rules = IgnoreRules(self.root, self.settings.index.exclude)

        def count_ignored(_rel: str) -> None:
            stats.files_skipped[Skip.IGNORED] += 1

        paths = list(walk_source_files(self.root, rules, count_ignored))
        stats.files_seen = len(paths)
        kept: set[str] = set()
        batches = self._read_batches(paths, self.store.file_states(), stats, kept, cancel)
        self._store_batches(batches, len(paths), stats, progress, cancel)
        if cancel is not None and cancel.is_set():
            stats.cancelled = True
        if not stats.cancelled:
            gone = sorted(set(self.store.file_states()) - kept)
            self.store.write_index_batch(removed=gone)
            stats.files_removed = len(gone)
        stats.seconds = time.perf_counter() - started
        return stats

    def index_paths(self, paths: Iterable[Path | str]) -> IndexStats:
        """Index created or changed files and forget deleted ones (a save, or
        workspace/didChangeWatchedFiles). Parses in this thread: one file costs milliseconds."""
        started = time.perf_counter()
        stats = IndexStats()
        rules = IgnoreRules(self.root, self.settings.index.exclude)
        states = self.store.file_states()
        present: list[str] = []
        removed: list[str] = []
        for path in paths:
            rel = self._relative(Path(path))
            if rel is None or language_for_path(rel) is None:
                continue
            stats.files_seen += 1
            if rules.is_ignored(rel, is_dir=False):
                stats.files_skipped[Skip.IGNORED] += 1
                removed.append(rel)
            elif (self.root / rel).is_file():
                present.append(rel)
            else:
                removed.append(rel)
        kept: set[str] = set()
        batches = self._read_batches(present, states, stats, kept, None)
        self._store_batches(batches, len(present), stats, None, None, use_pool=False)
        removed += [rel for rel in present if rel not in kept]
        gone = [rel for rel in removed if rel in states]
        if gone:
            self.store.write_index_batch(removed=gone)
        stats.files_removed = len(gone)
        stats.seconds = time.perf_counter() - started
        return stats

    def _relative(self, path: Path) -> str | None:
        absolute = path if path.is_absolute() else self.root / path
        try:
            return absolute.relative_to(self.root).as_posix()
        except ValueError:
            return None  # outside the workspace

    def _read_batches(
        self,
        paths: list[str],
        states: dict[str, FileState],
        stats: IndexStats,
        kept: set[str],
        cancel: threading.Event | None,
    ) -> Iterator[_Batch]:
        """Read changed files in batches; `kept` collects every path the store should keep."""
        queued: set[str] = set()  # hashes an earlier batch parses; it commits before ours
        batch = _Batch()
        for rel in paths:
            if cancel is not None and cancel.is_set():
                stats.cancelled = True
                return
            batch.handled += 1
            batch.last_path = rel
            outcome = self._read(rel, states.get(rel), stats)
            if outcome is None:
                continue
            kept.add(rel)
            if outcome is _UNCHANGED:
                continue
            record, data = outcome
            batch.files.append(record)
            batch.size += record.size
            stored = states.get(rel)
            if record.content_hash not in queued and (
                stored is None or stored.content_hash != record.content_hash
            ):
                batch.to_parse.setdefault(record.content_hash, (record.language, data))
            if len(batch.files) >= BATCH_FILES or batch.size >= BATCH_BYTES:
                yield self._without_known(batch, queued)
                batch = _Batch()
        if batch.handled:
            yield self._without_known(batch, queued)

    def _read(self, rel: str, stored: FileState | None, stats: IndexStats) -> Any:
        """(FileRecord, bytes) to store, _UNCHANGED when the stored record is still right, or
        None when the file is skipped."""
        path = self.root / rel
        try:
            stat = path.stat()
            if stored is not None and (stored.size, stored.mtime_ns) == (
                stat.st_size,
                stat.st_mtime_ns,
            ):
                stats.files_unchanged += 1
                return _UNCHANGED
            data, skip = read_source_bytes(path, self.settings.max_file_size)
        except OSError:
            return None  # vanished or unreadable since the walk: the next event will tell
        if skip is not None:
            stats.files_skipped[skip] += 1
            return None
        assert data is not None
        language = language_for_path(rel)
        assert language is not None
        stats.lines += count_lines(data)
        record = FileRecord(rel, content_hash(data), language, stat.st_size, stat.st_mtime_ns)
        return record, data

    def _without_known(self, batch: _Batch, queued: set[str]) -> _Batch:
        """Drop contents the store already holds (another path, an earlier branch)."""
        for digest in self.store.known_contents(batch.to_parse):
            del batch.to_parse[digest]
        queued.update(batch.to_parse)
        return batch

    def _store_batches(
        self,
        batches: Iterator[_Batch],
        total: int,
        stats: IndexStats,
        progress: Progress | None,
        cancel: threading.Event | None,
        use_pool: bool = True,
    ) -> None:
        head: list[_Batch] = []
        to_parse = 0
        for batch in batches:
            head.append(batch)
            to_parse += len(batch.to_parse)
            if to_parse >= POOL_MIN_FILES:
                break
        stream = itertools.chain(head, batches)
        done = 0

        def commit(batch: _Batch, contents: list[ContentRecord]) -> bool:
            nonlocal done
            if cancel is not None and cancel.is_set():
                stats.cancelled = True
                return False
            self.store.write_index_batch(contents, batch.files)
            parsed = {c.content_hash for c in contents}
            for record in batch.files:
                if record.content_hash in parsed:
                    parsed.discard(record.content_hash)
                    stats.files_parsed += 1
                else:
                    stats.files_reused += 1
            stats.symbols += sum(len(c.symbols) for c in contents)
            done += batch.handled
            if progress is not None:
                progress(done, total, batch.last_path)
            return True

        if not (use_pool and to_parse >= POOL_MIN_FILES):
            for batch in stream:
                if not commit(batch, parse_contents(_items(batch))):
                    return
            return
        # Spawned (fork is unsafe with threads), so that this process is each worker's parent
        # and a worker can end with it however it ends; see _end_with_parent. Multiprocessing's
        # resource tracker needs nothing: it exits when the last holder of its pipe (this
        # process and the workers) is gone. Under a forkserver, the workers would keep the
        # forkserver alive and wait for a parent that never dies.
        with ProcessPoolExecutor(
            POOL_WORKERS,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_end_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            window: collections.deque[tuple[_Batch, Future[list[ContentRecord]]]] = (
                collections.deque()
            )
            for batch in stream:
                window.append((batch, pool.submit(parse_contents, _items(batch))))
                # A bounded window keeps memory flat while both workers stay busy.
                if len(window) > 2 * POOL_WORKERS and not commit(*_resolved(window.popleft())):
                    pool.shutdown(cancel_futures=True)
                    return
            while window:
                if not commit(*_resolved(window.popleft())):
                    pool.shutdown(cancel_futures=True)
                    return


_UNCHANGED = object()


def _items(batch: _Batch) -> list[tuple[str, str, bytes]]:
    return [(digest, language, data) for digest, (language, data) in batch.to_parse.items()]


def _resolved(
    entry: tuple[_Batch, Future[list[ContentRecord]]],
) -> tuple[_Batch, list[ContentRecord]]:
    return entry[0], entry[1].result()


def _end_with_parent(parent: int) -> None:
    """Pool initializer: a worker ends as soon as its parent does (a killed server, a killed
    `gantry index`), instead of waiting forever on a queue that nobody will write to."""
    os.dup2(2, 1)  # fd 1 is the server's protocol stream: nothing of ours may ever reach it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the parent's to handle
    # Linux signals us when the parent *thread* that spawned us ends: the one that runs the
    # pool, which outlives it. Elsewhere (or if prctl fails) a thread watches for adoption.
    if sys.platform != "linux" or ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL):
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # it died before we were watching
        os._exit(1)


def _watch_parent(parent: int) -> None:
    """Where there is no parent-death signal: once orphaned, we are adopted by another."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def parse_contents(items: list[tuple[str, str, bytes]]) -> list[ContentRecord]:
    """Runs in a worker process (or inline for small batches)."""
    return [extract_content(digest, language, data) for digest, language, data in items]
