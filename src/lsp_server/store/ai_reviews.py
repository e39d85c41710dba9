"""SQL for the AI review cache: results by key, each with when it was made and last read.

Write functions run on the writer thread inside its transaction; read functions take any
reader connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from lsp_server.store.records import CachedReview

_CHUNK = 500  # stays well under SQLite's bound-parameter limit
_COLUMNS = "key, answer, model, prompt_version, created_at, read_at"


def read(conn: sqlite3.Connection, keys: Sequence[str]) -> dict[str, CachedReview]:
    found: dict[str, CachedReview] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(f"SELECT {_COLUMNS} FROM ai_reviews WHERE key IN ({marks})", chunk)
        found.update((row[0], CachedReview(*row)) for row in rows)
    return found


def write(conn: sqlite3.Connection, review: CachedReview) -> None:
    conn.execute(
        f"INSERT OR REPLACE INTO ai_reviews ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (
            review.key,
            review.answer,
            review.model,
            review.prompt_version,
            review.created_at,
            review.read_at,
        ),
    )


def touch(conn: sqlite3.Connection, keys: Iterable[str], now: float) -> None:
    conn.executemany(
        "UPDATE ai_reviews SET read_at = ? WHERE key = ? AND read_at < ?",
        [(now, key, now) for key in keys],
    )


def prune(conn: sqlite3.Connection, unread_since: float) -> int:
    """Delete results no review has read since `unread_since`; returns how many."""
    return conn.execute("DELETE FROM ai_reviews WHERE read_at < ?", (unread_since,)).rowcount
