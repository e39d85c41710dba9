"""The store's schema as an ordered list of migrations.

`PRAGMA user_version` records how many migrations a file has applied; opening a store applies the
rest in order, each in its own transaction. Never edit a released migration: append a new one.
`PRAGMA application_id` marks the file as Gantry's, so a foreign SQLite database is recognised.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

APPLICATION_ID = 0x47414E54  # "GANT"

Migration = Callable[[sqlite3.Connection], None]


def _v1_catalogue(conn: sqlite3.Connection) -> None:
    """Content-addressed catalogue: files point at contents, symbols hang off contents."""
    import sqlite_utils  # ~45 ms: only a store being created or migrated pays for it

    db = sqlite_utils.Database(conn)
    db["contents"].create(
        {"content_hash": str, "language": str, "lines": int, "bytes": int},
        pk="content_hash",
    )
    db["files"].create(
        {"path": str, "content_hash": str, "language": str, "size": int, "mtime_ns": int},
        pk="path",
    )
    db["files"].create_index(["content_hash"])
    db["symbols"].create(
        {
            "id": int,
            "content_hash": str,
            "name": str,
            "kind": str,
            "container": str,
            "start_line": int,
            "start_col": int,
            "end_line": int,
            "end_col": int,
            "signature": str,
            "docstring": str,
        },
        pk="id",
        not_null={"content_hash", "name", "kind"},
    )
    db["symbols"].create_index(["content_hash"])
    db["symbols"].create_index(["name"])
    db["verdicts"].create(
        {
            "fingerprint": str,
            "verdict": str,
            "rule": str,
            "path": str,
            "message": str,
            "created_at": float,
        },
        pk="fingerprint",
    )


def _v2_refs_and_search(conn: sqlite3.Connection) -> None:
    """Identifiers used by each symbol, each symbol's own content hash, full-text search."""
    conn.execute("ALTER TABLE symbols ADD COLUMN symbol_hash TEXT")
    # (symbol_id, name) as the key serves pruning by symbol; the name index serves "who uses X".
    conn.execute(
        "CREATE TABLE refs (symbol_id INTEGER NOT NULL, name TEXT NOT NULL,"
        " PRIMARY KEY (symbol_id, name)) WITHOUT ROWID"
    )
    conn.execute("CREATE INDEX idx_refs_name ON refs (name)")
    import sqlite_utils

    sqlite_utils.Database(conn)["symbols"].enable_fts(
        ["name", "container", "signature", "docstring"],
        create_triggers=True,
        tokenize="porter",
        replace=True,
    )


def _v3_ai_cache(conn: sqlite3.Connection) -> None:
    """AI review results by cache key, shared by the editor and `gantry check`."""
    # A rowid table: answers run to kilobytes, which WITHOUT ROWID tables store poorly.
    conn.execute(
        "CREATE TABLE ai_reviews (key TEXT PRIMARY KEY, answer TEXT NOT NULL,"
        " model TEXT NOT NULL, prompt_version TEXT NOT NULL, created_at REAL NOT NULL,"
        " read_at REAL NOT NULL)"
    )
    conn.execute("CREATE INDEX idx_ai_reviews_read_at ON ai_reviews (read_at)")


def _v4_testgen_runs(conn: sqlite3.Connection) -> None:
    """Test-generation runs and their funnel counts."""
    conn.execute(
        "CREATE TABLE testgen_runs (id INTEGER PRIMARY KEY, path TEXT NOT NULL,"
        " symbols TEXT NOT NULL, kept INTEGER NOT NULL, possible_bugs INTEGER NOT NULL,"
        " seconds REAL NOT NULL, tokens INTEGER NOT NULL, report TEXT NOT NULL,"
        " started_at REAL NOT NULL)"
    )
    conn.execute("CREATE INDEX idx_testgen_runs_path ON testgen_runs (path, id)")


MIGRATIONS: tuple[Migration, ...] = (
    _v1_catalogue,
    _v2_refs_and_search,
    _v3_ai_cache,
    _v4_testgen_runs,
)
SCHEMA_VERSION = len(MIGRATIONS)


class NewerSchemaError(Exception):
    """The file was written by a newer Gantry: we must not touch it."""


def migrate(conn: sqlite3.Connection) -> int:
    """Bring `conn` (in autocommit mode) up to SCHEMA_VERSION; returns the version it started at."""
    start = conn.execute("PRAGMA user_version").fetchone()[0]
    if start > SCHEMA_VERSION:
        raise NewerSchemaError(
            f"schema version {start} is newer than this Gantry's {SCHEMA_VERSION}"
        )
    for version in range(start, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            if conn.execute("PRAGMA user_version").fetchone()[0] != version:
                conn.execute("ROLLBACK")
                continue
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return start
