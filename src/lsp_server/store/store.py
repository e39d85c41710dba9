"""The workspace context store: one SQLite file, one writer thread, readers on any thread.

Verdicts are held in memory too, and journalled before they are committed: a store file that
cannot be written leaves them in the journal, and a file deleted or replaced under a running
server is noticed on the next write (or on close) and rebuilt with the verdicts it held.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Self, TypeVar

import attrs

from lsp_server.store import ai_reviews, catalogue, testgen_runs
from lsp_server.store.db import connect, diagnose, move_aside, retry_busy
from lsp_server.store.journal import VerdictJournal, journal_path
from lsp_server.store.records import (
    CachedReview,
    ContentRecord,
    FileRecord,
    FileState,
    SymbolHit,
    SymbolUses,
    TestgenRun,
    Verdict,
)
from lsp_server.store.schema import migrate
from lsp_server.store.writer import StoreWriter

T = TypeVar("T")
log = logging.getLogger("gantry.store")
_VERDICT_COLUMNS = "fingerprint, verdict, rule, path, message, created_at"
READ_AT_RESOLUTION_S = 3600.0
"""A cache hit records its read only when the last recorded one is older than this: pruning
counts in days, so nearly every hit stays a pure read, with no write transaction."""


class VerdictNotStored(Exception):
    """The store file refused a verdict (read-only, say); it still holds, and is journalled."""


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.recovery_message: str | None = None
        self._journal = VerdictJournal(journal_path(path))
        self._verdicts: dict[str, Verdict] = {}
        self._lock = threading.Lock()  # verdicts and journal against a rebuild
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._attach()

    @classmethod
    def open(cls, path: Path, *, thorough: bool = True) -> Store:
        """Open (creating, migrating or rebuilding as needed) the store at `path`.

        `thorough=False` skips the whole-file integrity check; run `verify()` later."""
        path = Path(path)
        salvaged, message = _prepare(path, thorough)
        store = cls(path)
        try:
            store.recovery_message = store._load(salvaged)
        except BaseException:
            store.close()
            raise
        if message is not None:
            store.recovery_message = f"{message}; {len(store._verdicts)} verdict(s) were kept."
        return store

    def verify(self) -> Store:
        """This store if the whole file is sound; else it is closed, rebuilt (keeping verdicts)
        and the new store returned, with its recovery_message set."""
        if diagnose(self.path) is None:
            return self
        self.close()
        return Store.open(self.path)

    # -- verdicts ----------------------------------------------------------------------------

    def set_verdict(self, verdict: Verdict) -> None:
        """Remember a verdict: held at once, journalled, then committed. Any thread.

        Raises VerdictNotStored when only the store file refused it."""
        with self._lock:
            self._verdicts[verdict.fingerprint] = verdict
            self._journal.record(verdict)
        self._write_verdicts(lambda conn: _upsert_verdicts(conn, [verdict]))

    def remove_verdict(self, fingerprint: str) -> None:
        """Forget a verdict (un-dismiss). Any thread; raises as set_verdict does."""
        with self._lock:
            self._verdicts.pop(fingerprint, None)
            self._journal.record_removal(fingerprint)
        self._write_verdicts(
            lambda conn: conn.execute("DELETE FROM verdicts WHERE fingerprint = ?", (fingerprint,))
        )

    def verdicts(self, fingerprints: Iterable[str] | None = None) -> dict[str, Verdict]:
        held = self._verdicts
        if fingerprints is None:
            return dict(held)
        return {fp: held[fp] for fp in fingerprints if fp in held}

    # -- the index catalogue ----------------------------------------------------------------

    def file_states(self) -> dict[str, FileState]:
        return catalogue.file_states(self._reader())

    def known_contents(self, hashes: Iterable[str]) -> set[str]:
        return catalogue.known_contents(self._reader(), hashes)

    def write_index_batch(
        self,
        contents: Sequence[ContentRecord] = (),
        files: Sequence[FileRecord] = (),
        removed: Sequence[str] = (),
    ) -> None:
        """Atomically store contents, the files that point at them, and removed paths."""
        self._write(lambda conn: catalogue.write_batch(conn, contents, files, removed))

    def prune_contents(self) -> int:
        """Drop contents no file uses any more; returns how many. Only when asked: keeping them
        makes switching back to a branch free."""
        return self._write(catalogue.prune_contents)

    def search_symbols(self, query: str, limit: int = 20) -> list[SymbolHit]:
        return catalogue.search_symbols(self._reader(), query, limit)

    def definitions(self, name: str) -> list[SymbolHit]:
        return catalogue.definitions(self._reader(), name)

    def users_of(self, name: str) -> list[SymbolHit]:
        return catalogue.users_of(self._reader(), name)

    def symbols_in(self, path: str) -> list[SymbolHit]:
        return catalogue.symbols_in(self._reader(), path)

    def neighbourhood(
        self, defined: Sequence[str], used: Sequence[str], per_name: int = -1
    ) -> list[SymbolUses]:
        """The definitions of `defined` and the users of `used`, with what each uses (a repo
        map's nodes around some code); at most `per_name` for each name, all when negative."""
        return catalogue.neighbourhood(self._reader(), defined, used, per_name)

    # -- the AI review cache -----------------------------------------------------------------

    def ai_cached(self, key: str, *, now: float | None = None) -> CachedReview | None:
        """The cached review under `key`, or None. Any thread."""
        return self.ai_cached_many([key], now=now).get(key)

    def ai_cached_many(
        self, keys: Iterable[str], *, now: float | None = None
    ) -> dict[str, CachedReview]:
        """The cached reviews among `keys` (a file's units at once: one query). Any thread."""
        now = time.time() if now is None else now
        found = ai_reviews.read(self._reader(), list(dict.fromkeys(keys)))
        stale = [
            key for key, review in found.items() if review.read_at < now - READ_AT_RESOLUTION_S
        ]
        if stale:
            try:
                self._write(lambda conn: ai_reviews.touch(conn, stale, now))
            except sqlite3.OperationalError as exc:  # a read-only file still answers hits
                log.warning("cannot record reads of cached AI reviews in %s: %s", self.path, exc)
            else:
                found.update((key, attrs.evolve(found[key], read_at=now)) for key in stale)
        return found

    def put_ai_review(
        self,
        key: str,
        answer: str,
        *,
        model: str,
        prompt_version: str,
        now: float | None = None,
    ) -> CachedReview:
        """Cache a review's answer (JSON text, an empty answer too: "clean") under `key`,
        replacing what was there. Any thread; returns once committed. Raises
        sqlite3.OperationalError when the file cannot be written: the review stands uncached."""
        now = time.time() if now is None else now
        review = CachedReview(key, answer, model, prompt_version, now, now)
        self._write(lambda conn: ai_reviews.write(conn, review))
        return review

    def prune_ai_reviews(self, unread_days: float, *, now: float | None = None) -> int:
        """Drop cached reviews no review has read for `unread_days`; returns how many."""
        now = time.time() if now is None else now
        cutoff = now - unread_days * 86400
        return self._write(lambda conn: ai_reviews.prune(conn, cutoff))

    # -- test-generation runs ------------------------------------------------------------

    def record_testgen_run(self, run: TestgenRun) -> TestgenRun:
        """Remember a run's funnel (the newest 1,000 runs are kept). Any thread; returns the
        run with its id once committed. Raises sqlite3.OperationalError when the file cannot
        be written."""
        return attrs.evolve(run, id=self._write(lambda conn: testgen_runs.write(conn, run)))

    def testgen_runs(self, path: str | None = None, limit: int = 20) -> list[TestgenRun]:
        """The newest runs first, of the file at `path` (relative to the root) when given."""
        return testgen_runs.recent(self._reader(), path, limit)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        if self.writer.thread.is_alive() and self._moved():
            try:  # the verdicts held may exist nowhere else
                self._rebuild()
            except Exception:
                log.exception("cannot rebuild the context store %s on closing", self.path)
        # Readers first: the last connection to close checkpoints the WAL into the file, and a
        # query_only reader cannot.
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self.writer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _attach(self) -> None:
        """Connect to the file now at the path; remember which file it is."""
        self.writer = StoreWriter(self.path)
        self._identity = _identity(self.path)
        self._local = threading.local()  # each thread's reader, opened on first use

    def _moved(self) -> bool:
        """Whether the file at the path is no longer the one we opened (deleted, replaced)."""
        try:
            return _identity(self.path) != self._identity
        except FileNotFoundError:
            return True

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._moved():
            self._rebuild()
        return self.writer.run(work)

    def _write_verdicts(self, work: Callable[[sqlite3.Connection], object]) -> None:
        try:
            self._write(work)
        except sqlite3.OperationalError as exc:
            raise VerdictNotStored(
                f"the context store {self.path} cannot be written ({exc}): the verdict is kept in"
                f" {self._journal.path} only, and goes back into the store once it can be written"
            ) from exc

    def _rebuild(self) -> None:
        """Use (creating it if needed) the store now at the path, and give it and the journal
        the verdicts we hold: after `rm store.db*`, they exist nowhere else."""
        with self._lock:
            if not self._moved():
                return  # another thread has rebuilt it
            held = list(self._verdicts.values())
            self.writer.close()
            salvaged, _message = _prepare(self.path, thorough=True)
            self._attach()
            journalled = self._journal.replay()
            for verdict in held:
                if journalled.get(verdict.fingerprint) != verdict:
                    self._journal.record(verdict)
            self._load(salvaged)
        log.warning(
            "the context store %s was deleted or replaced while in use: rebuilt with %d verdict(s)",
            self.path,
            len(self._verdicts),
        )

    def _load(self, salvaged: dict[str, Verdict]) -> str | None:
        """Hold the file's verdicts, the salvaged ones over them and the journal's over all, and
        save what the file lacks. Returns why that could not be saved, if it could not."""
        in_file = _read_verdicts(self._reader())
        held = in_file | salvaged
        for fingerprint, verdict in self._journal.replay().items():
            if verdict is None:
                held.pop(fingerprint, None)
            else:
                held[fingerprint] = verdict
        self._verdicts = held
        stale = [fp for fp in in_file if fp not in held]
        changed = [v for fp, v in held.items() if in_file.get(fp) != v]
        if not stale and not changed:
            return None
        try:
            self.writer.run(lambda conn: _save_verdicts(conn, changed, stale))
        except sqlite3.OperationalError as exc:
            return (
                f"The context store {self.path} cannot be written ({exc}): {len(changed)}"
                f" verdict(s) are kept in {self._journal.path} only until it can be written."
            )
        return None

    def _reader(self) -> sqlite3.Connection:
        """This thread's read-only connection (sqlite3 connections are not shared across threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, read_only=True)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn


def _identity(path: Path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def _prepare(path: Path, thorough: bool) -> tuple[dict[str, Verdict], str | None]:
    """Create, migrate, or move aside and recreate the store file at `path`. Returns the verdicts
    salvaged from a file moved aside, and what was done to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    problem = diagnose(path, thorough=thorough)
    salvaged: dict[str, Verdict] = {}
    message = None
    if problem is not None:
        salvaged = _salvage_verdicts(path)
        aside = move_aside(path)
        message = (
            f"The context store {path} could not be used because {problem}; it was moved to "
            f"{aside.name} and a fresh store was created. The index will be rebuilt"
        )
    with contextlib.closing(connect(path)) as conn:
        retry_busy(lambda: migrate(conn))  # idempotent: each step re-reads the version
    return salvaged, message


def _read_verdicts(conn: sqlite3.Connection) -> dict[str, Verdict]:
    rows = conn.execute(f"SELECT {_VERDICT_COLUMNS} FROM verdicts")
    return {row[0]: Verdict(*row) for row in rows}


def _upsert_verdicts(conn: sqlite3.Connection, verdicts: Iterable[Verdict]) -> None:
    conn.executemany(
        f"INSERT OR REPLACE INTO verdicts ({_VERDICT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        [(v.fingerprint, v.verdict, v.rule, v.path, v.message, v.created_at) for v in verdicts],
    )


def _save_verdicts(
    conn: sqlite3.Connection, changed: Sequence[Verdict], stale: Sequence[str]
) -> None:
    _upsert_verdicts(conn, changed)
    conn.executemany("DELETE FROM verdicts WHERE fingerprint = ?", [(fp,) for fp in stale])


def _salvage_verdicts(path: Path) -> dict[str, Verdict]:
    """Whatever verdict rows can still be read from a damaged store, row by row."""
    salvaged: dict[str, Verdict] = {}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return salvaged
    try:
        for row in conn.execute(f"SELECT {_VERDICT_COLUMNS} FROM verdicts"):
            try:
                salvaged[row[0]] = Verdict(*row)
            except (TypeError, ValueError):
                continue
    except sqlite3.Error:
        pass  # keep the rows read before the damage
    finally:
        conn.close()
    return salvaged
