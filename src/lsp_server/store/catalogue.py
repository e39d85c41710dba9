"""SQL for the content-addressed index: files -> contents -> symbols -> refs.

Write functions run on the writer thread inside its transaction; read functions take any
reader connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import TypeVar

from lsp_server.store.records import ContentRecord, FileRecord, FileState, SymbolHit, SymbolUses

_CHUNK = 500  # stays well under SQLite's bound-parameter limit
T = TypeVar("T")


def _chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def file_states(conn: sqlite3.Connection) -> dict[str, FileState]:
    rows = conn.execute("SELECT path, content_hash, size, mtime_ns FROM files")
    return {path: FileState(digest, size, mtime) for path, digest, size, mtime in rows}


def known_contents(conn: sqlite3.Connection, hashes: Iterable[str]) -> set[str]:
    known: set[str] = set()
    for chunk in _chunks(list(hashes)):
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT content_hash FROM contents WHERE content_hash IN ({marks})"
        known.update(row[0] for row in conn.execute(sql, chunk))
    return known


def write_batch(
    conn: sqlite3.Connection,
    contents: Sequence[ContentRecord],
    files: Sequence[FileRecord],
    removed: Sequence[str],
) -> None:
    """Store new contents and the files pointing at them, in the caller's transaction."""
    # Another batch (or process) may have stored the same content since the caller looked.
    present = known_contents(conn, [c.content_hash for c in contents])
    fresh = [c for c in contents if c.content_hash not in present]
    conn.executemany(
        "INSERT INTO contents (content_hash, language, lines, bytes) VALUES (?, ?, ?, ?)",
        [(c.content_hash, c.language, c.lines, c.bytes) for c in fresh],
    )
    # Ids are assigned here, under the write lock, so refs can point at them without a
    # round trip per symbol.
    next_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM symbols").fetchone()[0]
    symbol_rows = []
    ref_rows = []
    for content in fresh:
        for symbol in content.symbols:
            symbol_rows.append(
                (
                    next_id,
                    content.content_hash,
                    symbol.name,
                    symbol.kind,
                    symbol.container,
                    symbol.start_line,
                    symbol.start_col,
                    symbol.end_line,
                    symbol.end_col,
                    symbol.signature,
                    symbol.docstring,
                    symbol.symbol_hash,
                )
            )
            ref_rows.extend((next_id, name) for name in symbol.refs)
            next_id += 1
    conn.executemany(
        "INSERT INTO symbols (id, content_hash, name, kind, container, start_line, start_col,"
        " end_line, end_col, signature, docstring, symbol_hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        symbol_rows,
    )
    conn.executemany("INSERT INTO refs (symbol_id, name) VALUES (?, ?)", ref_rows)
    conn.executemany(
        "INSERT OR REPLACE INTO files (path, content_hash, language, size, mtime_ns)"
        " VALUES (?, ?, ?, ?, ?)",
        [(f.path, f.content_hash, f.language, f.size, f.mtime_ns) for f in files],
    )
    conn.executemany("DELETE FROM files WHERE path = ?", [(path,) for path in removed])


def prune_contents(conn: sqlite3.Connection) -> int:
    """Delete contents no file points at any more, with their symbols and refs."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS orphans (content_hash TEXT PRIMARY KEY) WITHOUT ROWID"
    )
    conn.execute("DELETE FROM orphans")
    conn.execute(
        "INSERT INTO orphans SELECT content_hash FROM contents"
        " WHERE content_hash NOT IN (SELECT content_hash FROM files)"
    )
    conn.execute(
        "DELETE FROM refs WHERE symbol_id IN"
        " (SELECT id FROM symbols WHERE content_hash IN (SELECT content_hash FROM orphans))"
    )
    conn.execute("DELETE FROM symbols WHERE content_hash IN (SELECT content_hash FROM orphans)")
    return conn.execute(
        "DELETE FROM contents WHERE content_hash IN (SELECT content_hash FROM orphans)"
    ).rowcount


_HIT_COLUMNS = (
    "f.path, s.name, s.kind, s.container, s.start_line, s.start_col, s.end_line, s.end_col,"
    " s.signature, s.docstring"
)
_HIT_NAMES = _HIT_COLUMNS.replace("f.", "").replace("s.", "")  # the same, unqualified


def search_symbols(conn: sqlite3.Connection, query: str, limit: int) -> list[SymbolHit]:
    """Full-text search over name, container, signature and docstring, best matches first."""
    sql = (
        f"SELECT {_HIT_COLUMNS} FROM symbols_fts"
        " JOIN symbols s ON s.id = symbols_fts.rowid"
        " JOIN files f ON f.content_hash = s.content_hash"
        " WHERE symbols_fts MATCH ? ORDER BY rank, f.path LIMIT ?"
    )
    return [SymbolHit(*row) for row in conn.execute(sql, (_fts_phrase(query), limit))]


def _fts_phrase(query: str) -> str:
    """Quote each word so user text is never read as FTS5 syntax."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in query.split())


def definitions(conn: sqlite3.Connection, name: str) -> list[SymbolHit]:
    sql = (
        f"SELECT {_HIT_COLUMNS} FROM symbols s JOIN files f ON f.content_hash = s.content_hash"
        " WHERE s.name = ? ORDER BY f.path, s.start_line"
    )
    return [SymbolHit(*row) for row in conn.execute(sql, (name,))]


def users_of(conn: sqlite3.Connection, name: str) -> list[SymbolHit]:
    """Symbols whose bodies use the identifier `name` (callers, readers, ...)."""
    sql = (
        f"SELECT {_HIT_COLUMNS} FROM refs r JOIN symbols s ON s.id = r.symbol_id"
        " JOIN files f ON f.content_hash = s.content_hash"
        " WHERE r.name = ? ORDER BY f.path, s.start_line"
    )
    return [SymbolHit(*row) for row in conn.execute(sql, (name,))]


def symbols_in(conn: sqlite3.Connection, path: str) -> list[SymbolHit]:
    sql = (
        f"SELECT {_HIT_COLUMNS} FROM files f JOIN symbols s ON s.content_hash = f.content_hash"
        " WHERE f.path = ? ORDER BY s.start_line, s.start_col"
    )
    return [SymbolHit(*row) for row in conn.execute(sql, (path,))]


def neighbourhood(
    conn: sqlite3.Connection, defined: Sequence[str], used: Sequence[str], per_name: int = -1
) -> list[SymbolUses]:
    """Symbols named in `defined`, then symbols whose bodies use a name in `used`, each with
    the identifiers it uses. At most `per_name` symbols for each name (the first in path
    order; all when negative), so that one popular name (`get`, `run`) cannot flood the rest."""
    found: dict[int, SymbolHit] = {}
    for names, key, source in (
        (defined, "s.name", "symbols s"),
        (used, "r.name", "refs r JOIN symbols s ON s.id = r.symbol_id"),
    ):
        for chunk in _chunks(list(dict.fromkeys(names))):
            marks = ",".join("?" * len(chunk))
            query = (
                f"SELECT id, {_HIT_NAMES} FROM"
                f" (SELECT s.id, {_HIT_COLUMNS}, row_number() OVER"
                f" (PARTITION BY {key} ORDER BY f.path, s.start_line, s.id) AS nth"
                f" FROM {source} JOIN files f ON f.content_hash = s.content_hash"
                f" WHERE {key} IN ({marks}))"
                " WHERE ? < 0 OR nth <= ? ORDER BY path, start_line, id"
            )
            for row in conn.execute(query, (*chunk, per_name, per_name)):
                found.setdefault(row[0], SymbolHit(*row[1:]))
    refs: dict[int, list[str]] = {symbol_id: [] for symbol_id in found}
    for chunk in _chunks(list(found)):
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT symbol_id, name FROM refs WHERE symbol_id IN ({marks}) ORDER BY name"
        for symbol_id, name in conn.execute(sql, chunk):
            refs[symbol_id].append(name)
    return [SymbolUses(hit, tuple(refs[symbol_id])) for symbol_id, hit in found.items()]
