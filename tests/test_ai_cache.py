"""The AI review cache: its key, and results in a real store file across restarts and
migrations."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import sysconfig
import textwrap
import threading
from pathlib import Path

import attrs
import pytest
from test_store import _read_only

from lsp_server.analysis.indexer import Indexer
from lsp_server.config import Settings
from lsp_server.review.ai.cache import cache_key
from lsp_server.review.ai.context import (
    ContextItem,
    ContextPack,
    build_pack,
    neighbourhoods,
    pack_digest,
)
from lsp_server.review.ai.units import split_units
from lsp_server.store import FileRecord, Store, Verdict
from lsp_server.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

STDLIB = Path(sysconfig.get_paths()["stdlib"])
DAY = 86400.0
T0 = 1_800_000_000.0


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "workspace.db"


def _pack(*items: ContextItem) -> ContextPack:
    return ContextPack(items, pack_digest(items), 10, ())


def _answer(findings: list[dict]) -> str:
    return json.dumps({"findings": findings, "provenance": {"model": "m1"}})


def test_the_key_changes_with_each_part_and_only_with_them() -> None:
    units = split_units("python", Path(textwrap.__file__).read_text())
    unit, other = units[2], units[3]
    pack = _pack(ContextItem("definition", "a.py", "f", "def f()"))
    key = cache_key(unit, pack, "v1", "model-a")
    assert len(key) == 64 and key == cache_key(unit, pack, "v1", "model-a")
    assert (
        len(
            {
                key,
                cache_key(other, pack, "v1", "model-a"),
                cache_key(unit, _pack(), "v1", "model-a"),
                cache_key(unit, pack, "v2", "model-a"),
                cache_key(unit, pack, "v1", "model-b"),
                cache_key(attrs.evolve(unit, language="cython"), pack, "v1", "model-a"),
            }
        )
        == 6
    )
    # Parts are kept apart: moving a character from one to the next is another key.
    assert cache_key(unit, pack, "v1m", "odel") != cache_key(unit, pack, "v1", "model")
    # The unit's position is not part of it.
    assert cache_key(attrs.evolve(unit, start_line=99), pack, "v1", "model-a") == key


def test_results_round_trip_and_survive_a_restart(store_path: Path) -> None:
    found = _answer([{"line": 3, "message": "off by one"}])
    with Store.open(store_path) as store:
        assert store.ai_cached("k1") is None
        stored = store.put_ai_review("k1", found, model="m1", prompt_version="p1", now=T0)
        store.put_ai_review("k2", _answer([]), model="m1", prompt_version="p1", now=T0)
        assert store.ai_cached("k1", now=T0) == stored
    with Store.open(store_path) as store:
        review = store.ai_cached("k1", now=T0)
        assert review is not None
        assert (review.answer, review.model, review.prompt_version) == (found, "m1", "p1")
        assert review.created_at == T0
        # A clean answer is a result like any other.
        clean = store.ai_cached("k2", now=T0)
        assert clean is not None and json.loads(clean.answer)["findings"] == []
        assert set(store.ai_cached_many(["k1", "k2", "k3", "k1"], now=T0)) == {"k1", "k2"}
        # A later review under the same key replaces the earlier one.
        store.put_ai_review("k1", _answer([]), model="m1", prompt_version="p1", now=T0 + 1)
        assert store.ai_cached("k1", now=T0 + 1).answer == _answer([])


def test_an_editor_and_gantry_check_share_one_cache(store_path: Path) -> None:
    """Two stores open on one file, as the server and `gantry check` are."""
    with Store.open(store_path) as editor, Store.open(store_path) as check:
        editor.put_ai_review("k", _answer([]), model="m", prompt_version="p")
        assert check.ai_cached("k") is not None
        check.put_ai_review("k2", _answer([]), model="m", prompt_version="p")
        assert editor.ai_cached("k2") is not None


def test_entries_unread_for_n_days_are_pruned(store_path: Path) -> None:
    with Store.open(store_path) as store:
        for key in ("read", "unread"):
            store.put_ai_review(key, _answer([]), model="m", prompt_version="p", now=T0)
        assert store.ai_cached("read", now=T0 + 10 * DAY).read_at == T0 + 10 * DAY
        # A read within the hour records nothing new: hits stay pure reads.
        assert store.ai_cached("read", now=T0 + 10 * DAY + 60).read_at == T0 + 10 * DAY
        assert store.prune_ai_reviews(7, now=T0 + 12 * DAY) == 1
        assert store.ai_cached("unread", now=T0 + 12 * DAY) is None
        assert store.ai_cached("read", now=T0 + 12 * DAY) is not None
        assert store.prune_ai_reviews(7, now=T0 + 12 * DAY) == 0


def test_a_read_only_store_still_answers_hits(store_path: Path) -> None:
    with Store.open(store_path) as store:
        store.put_ai_review("k", _answer([]), model="m", prompt_version="p", now=T0)
    with _read_only(store_path), Store.open(store_path) as store:
        # Recording the read fails; the hit does not.
        assert store.ai_cached("k", now=T0 + 2 * DAY).read_at == T0
        with pytest.raises(sqlite3.OperationalError):
            store.put_ai_review("k2", _answer([]), model="m", prompt_version="p")


def test_cache_writes_happen_on_the_writer_thread(store_path: Path) -> None:
    with Store.open(store_path) as store:
        writing_threads: set[int] = set()

        def trace(statement: str) -> None:
            if statement.split()[0].upper() in {"INSERT", "DELETE", "UPDATE", "BEGIN"}:
                writing_threads.add(threading.get_ident())

        store.writer.run(lambda conn: conn.set_trace_callback(trace))
        store.put_ai_review("k", _answer([]), model="m", prompt_version="p", now=T0)
        store.ai_cached("k", now=T0 + DAY)  # records the read
        store.prune_ai_reviews(0, now=T0 + 3 * DAY)
        assert writing_threads == {store.writer.thread.ident}


def test_a_version_2_store_migrates_keeping_its_data(store_path: Path) -> None:
    store_path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(store_path, isolation_level=None)) as conn:
        for migration in MIGRATIONS[:2]:
            migration(conn)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 2")
        conn.execute("INSERT INTO verdicts VALUES ('old', 'dismissed', 'R1', 'a.py', 'kept', 1.0)")
        conn.execute("INSERT INTO contents VALUES ('h1', 'python', 1, 10)")
        conn.execute("INSERT INTO files VALUES ('a.py', 'h1', 'python', 10, 1)")
    assert SCHEMA_VERSION >= 3  # the AI cache came with version 3: this file predates it
    with Store.open(store_path) as store:
        assert store.recovery_message is None
        assert store.verdicts()["old"] == Verdict("old", "dismissed", "R1", "a.py", "kept", 1.0)
        assert set(store.file_states()) == {"a.py"}
        store.put_ai_review("k", _answer([]), model="m", prompt_version="p")
        store.write_index_batch(files=[FileRecord("b.py", "h1", "python", 10, 2)])
    with Store.open(store_path) as store:
        assert store.ai_cached("k") is not None
        assert set(store.file_states()) == {"a.py", "b.py"}
    with contextlib.closing(sqlite3.connect(store_path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def _keys(store: Store, root: Path, path: str) -> dict[str, str]:
    units = split_units("python", (root / path).read_text())
    packs = neighbourhoods(store, units)
    return {
        unit.name: cache_key(unit, build_pack(unit, path, around), "v1", "m")
        for unit, around in zip(units, packs, strict=True)
    }


def test_after_a_one_line_change_only_that_units_key_is_new(tmp_path: Path) -> None:
    """Over the standard library's json package, indexed into a real store."""
    root = tmp_path / "ws"
    shutil.copytree(STDLIB / "json", root / "json", ignore=shutil.ignore_patterns("__pycache__"))
    with Store.open(tmp_path / "store.db") as store:
        indexer = Indexer(store, root, Settings())
        indexer.index_all()
        before = {
            path: _keys(store, root, path) for path in ("json/encoder.py", "json/__init__.py")
        }
        encoder = root / "json" / "encoder.py"
        source = encoder.read_text()
        line = "        chunks = self.iterencode(o, _one_shot=True)\n"
        assert source.count(line) == 1
        encoder.write_text(
            source.replace(line, line.replace("chunks", "parts") + "        chunks = parts\n")
        )
        indexer.index_paths([encoder])
        after = {path: _keys(store, root, path) for path in before}
        changed = [
            (path, name)
            for path, keys in after.items()
            for name, key in keys.items()
            if before[path].get(name) != key
        ]
        assert changed == [("json/encoder.py", "JSONEncoder.encode")]
