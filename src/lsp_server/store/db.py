"""Opening store files: pragmas, retries on a busy file, and telling a healthy store from a
damaged one, and either from a file that is not Gantry's at all."""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from lsp_server.store.schema import APPLICATION_ID, SCHEMA_VERSION, NewerSchemaError

T = TypeVar("T")

SQLITE_HEADER = b"SQLite format 3\x00"
_HEADER_SIZE = 100  # the database header; application_id is its big-endian int at offset 68
_OUR_MARK = APPLICATION_ID.to_bytes(4, "big")
_OUR_TABLES = frozenset(("contents", "files", "symbols", "verdicts"))
BUSY_TIMEOUT_S = 5.0
BUSY_RETRIES = 10


class NotAStoreError(Exception):
    """The file at the store path cannot be identified as Gantry's: it is left exactly as is."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"{path} is not a Gantry context store ({reason}); Gantry leaves it untouched:"
            " set `store` to another path, or move the file away yourself"
        )


def is_busy(exc: sqlite3.Error) -> bool:
    # Extended codes (SQLITE_BUSY_RECOVERY, ...) keep the primary code in the low byte.
    return (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF == sqlite3.SQLITE_BUSY


def retry_busy(work: Callable[[], T]) -> T:
    """`work()`, tried again after a short, growing, jittered pause while the file is busy.

    busy_timeout makes SQLite wait for most locks, but where waiting could deadlock it answers
    "database is locked" at once: switching a fresh file to WAL while another process opens it,
    or reading a WAL another process is recovering. A few processes opening one file do that."""
    pause = 0.002
    for _ in range(BUSY_RETRIES):
        try:
            return work()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
        time.sleep(pause * random.uniform(0.5, 1.0))
        pause = min(pause * 2, 0.5)
    return work()  # the last try: its error reaches the caller


def connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).

    `timeout` sets busy_timeout before the first statement touches the file."""
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        if read_only:
            # Enforces the single-writer rule: any write on a reader connection raises.
            conn.execute("PRAGMA query_only = ON")
        else:
            retry_busy(lambda: conn.execute("PRAGMA journal_mode = WAL"))
            # The index can be rebuilt and verdicts are journalled: NORMAL's durability is enough.
            conn.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def diagnose(path: Path, *, thorough: bool = True) -> str | None:
    """Why the store at `path` must be moved aside and rebuilt, or None when it can be used
    (or does not exist yet).

    `thorough` adds SQLite's quick_check, which reads the whole file (~0.1-0.3 s for a large
    store): callers in a hurry check cheaply first and thoroughly later.

    Raises NotAStoreError for a file not identifiably Gantry's (only our own store is ever
    moved aside), and NewerSchemaError for a store written by a newer Gantry: both are left alone.
    """
    try:
        with path.open("rb") as file:
            header = file.read(_HEADER_SIZE)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NotAStoreError(path, f"its header cannot be read: {exc.strerror}") from exc
    if not header:
        return None  # created, not yet written: another process is creating the store
    if not header.startswith(SQLITE_HEADER):
        raise NotAStoreError(path, "it is not a SQLite database")
    # Our mark in the raw header identifies our store even where SQLite cannot read the rest.
    marked = header[68:72] == _OUR_MARK
    try:
        return retry_busy(lambda: _diagnose_database(path, marked, thorough))
    except sqlite3.DatabaseError as exc:
        if is_busy(exc):
            raise
        if not marked:
            raise NotAStoreError(path, f"SQLite cannot read it: {exc}") from exc
        return f"it is corrupt ({exc})"


def _diagnose_database(path: Path, marked: bool, thorough: bool) -> str | None:
    with contextlib.closing(
        sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None
        )
    ) as conn:
        # One read transaction, one snapshot: another process may commit its migrations between
        # two statements, and "no mark yet" with "all of Gantry's tables" reads as damage.
        conn.execute("BEGIN")
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if app_id == 0 and version == 0 and not tables:
            return None  # an empty database: the migrations will fill it
        # A fresh mark may still sit in the WAL rather than in the file's header.
        marked = marked or app_id == APPLICATION_ID
        if not marked and not (app_id == 0 and _OUR_TABLES <= tables):
            raise NotAStoreError(path, "it is another application's SQLite database")
        if version > SCHEMA_VERSION:
            raise NewerSchemaError(
                f"the store was written by a newer Gantry (schema {version} > {SCHEMA_VERSION})"
            )
        if not marked:
            return "it has Gantry's tables but lost Gantry's mark (application_id)"
        problems = [row[0] for row in conn.execute("PRAGMA quick_check")] if thorough else ["ok"]
        if problems != ["ok"]:
            return f"it is corrupt ({'; '.join(problems[:3])})"
        # quick_check does not read every row: touch the tables the user cannot afford to lose.
        conn.execute("SELECT count(*), max(length(message)) FROM verdicts").fetchone()
        conn.execute("SELECT count(*), max(length(path)) FROM files").fetchone()
        return None


def move_aside(path: Path) -> Path:
    """Rename the store (and its WAL/shm siblings) to `<name>.corrupt-<timestamp>`; never delete.

    Only for a file `diagnose` identified as our store."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    serial = 1
    while target.exists():
        serial += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{serial}")
    path.rename(target)
    for suffix in ("-wal", "-shm"):
        sibling = path.with_name(path.name + suffix)
        if sibling.exists():
            sibling.rename(target.with_name(target.name + suffix))
    return target
