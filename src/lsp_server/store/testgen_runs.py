"""SQL for test-generation runs: one row per run, its funnel report as JSON.

Write functions run on the writer thread inside its transaction; read functions take any
reader connection.
"""

from __future__ import annotations

import json
import sqlite3

from lsp_server.store.records import TestgenRun

_COLUMNS = "path, symbols, kept, possible_bugs, seconds, tokens, report, started_at, id"
KEEP = 1000
"""Runs kept per store: the oldest beyond it are dropped as new ones are recorded."""


def write(conn: sqlite3.Connection, run: TestgenRun) -> int:
    cursor = conn.execute(
        "INSERT INTO testgen_runs (path, symbols, kept, possible_bugs, seconds, tokens, report,"
        " started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run.path,
            json.dumps(list(run.symbols)),
            run.kept,
            run.possible_bugs,
            run.seconds,
            run.tokens,
            run.report,
            run.started_at,
        ),
    )
    conn.execute(
        "DELETE FROM testgen_runs WHERE id <= (SELECT id FROM testgen_runs"
        " ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (KEEP,),
    )
    return cursor.lastrowid


def recent(conn: sqlite3.Connection, path: str | None, limit: int) -> list[TestgenRun]:
    """The newest runs first, of `path` only when given."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM testgen_runs WHERE ? IS NULL OR path = ? ORDER BY id DESC LIMIT ?",
        (path, path, limit),
    )
    return [
        TestgenRun(p, tuple(json.loads(s)), k, b, sec, tok, rep, at, id_)
        for p, s, k, b, sec, tok, rep, at, id_ in rows
    ]
