"""The workspace context store: one SQLite file, one writer thread, readers on any thread."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Self

from lsp_server.store import catalogue
from lsp_server.store.db import connect, diagnose, move_aside, retry_busy
from lsp_server.store.journal import VerdictJournal, journal_path
from lsp_server.store.records import ContentRecord, FileRecord, FileState, SymbolHit, Verdict
from lsp_server.store.schema import migrate
from lsp_server.store.writer import StoreWriter

_VERDICT_COLUMNS = "fingerprint, verdict, rule, path, message, created_at"


class Store:
    def __init__(self, path: Path, writer: StoreWriter, recovery_message: str | None) -> None:
        self.path = path
        self.writer = writer
        self.recovery_message = recovery_message
        self._journal = VerdictJournal(journal_path(path))
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    @classmethod
    def open(cls, path: Path, *, thorough: bool = True) -> Store:
        """Open (creating, migrating or rebuilding as needed) the store at `path`.

        `thorough=False` skips the whole-file integrity check; run `verify()` later."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists() or path.stat().st_size == 0
        problem = diagnose(path, thorough=thorough)
        salvaged: list[Verdict] = []
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
        store = cls(path, StoreWriter(path), None)
        if problem is not None or created:
            restored = store._restore_verdicts(salvaged)
            if message is not None:
                store.recovery_message = f"{message}; {restored} verdict(s) were kept."
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
        """Remember a verdict; returns once it is committed and journalled. Any thread."""
        self.writer.run(lambda conn: _upsert_verdicts(conn, [verdict]))
        self._journal.record(verdict)

    def remove_verdict(self, fingerprint: str) -> None:
        """Forget a verdict (un-dismiss). Any thread."""
        self.writer.run(
            lambda conn: conn.execute("DELETE FROM verdicts WHERE fingerprint = ?", (fingerprint,))
        )
        self._journal.record_removal(fingerprint)

    def verdicts(self, fingerprints: Iterable[str] | None = None) -> dict[str, Verdict]:
        conn = self._reader()
        if fingerprints is None:
            rows = conn.execute(f"SELECT {_VERDICT_COLUMNS} FROM verdicts").fetchall()
        else:
            wanted = list(fingerprints)
            rows = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT {_VERDICT_COLUMNS} FROM verdicts WHERE fingerprint IN ({marks})"
                rows.extend(conn.execute(sql, chunk))
        return {row[0]: Verdict(*row) for row in rows}

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
        self.writer.run(lambda conn: catalogue.write_batch(conn, contents, files, removed))

    def prune_contents(self) -> int:
        """Drop contents no file uses any more; returns how many. Only when asked: keeping them
        makes switching back to a branch free."""
        return self.writer.run(catalogue.prune_contents)

    def search_symbols(self, query: str, limit: int = 20) -> list[SymbolHit]:
        return catalogue.search_symbols(self._reader(), query, limit)

    def definitions(self, name: str) -> list[SymbolHit]:
        return catalogue.definitions(self._reader(), name)

    def users_of(self, name: str) -> list[SymbolHit]:
        return catalogue.users_of(self._reader(), name)

    def symbols_in(self, path: str) -> list[SymbolHit]:
        return catalogue.symbols_in(self._reader(), path)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
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

    def _reader(self) -> sqlite3.Connection:
        """This thread's read-only connection (sqlite3 connections are not shared across threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, read_only=True)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _restore_verdicts(self, salvaged: list[Verdict]) -> int:
        """Salvaged rows first, then the journal on top: it is written after each commit."""
        merged: dict[str, Verdict | None] = {v.fingerprint: v for v in salvaged}
        merged.update(self._journal.replay())
        kept = [v for v in merged.values() if v is not None]
        self.writer.run(lambda conn: _upsert_verdicts(conn, kept))
        return len(kept)


def _upsert_verdicts(conn: sqlite3.Connection, verdicts: Iterable[Verdict]) -> None:
    conn.executemany(
        f"INSERT OR REPLACE INTO verdicts ({_VERDICT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        [(v.fingerprint, v.verdict, v.rule, v.path, v.message, v.created_at) for v in verdicts],
    )


def _salvage_verdicts(path: Path) -> list[Verdict]:
    """Whatever verdict rows can still be read from a damaged store, row by row."""
    salvaged: list[Verdict] = []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return salvaged
    try:
        for row in conn.execute(f"SELECT {_VERDICT_COLUMNS} FROM verdicts"):
            try:
                salvaged.append(Verdict(*row))
            except (TypeError, ValueError):
                continue
    except sqlite3.Error:
        pass  # keep the rows read before the damage
    finally:
        conn.close()
    return salvaged
