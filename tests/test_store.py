"""The context store on real SQLite files: migrations, recovery, the single writer."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from lsp_harness import SERVER, diagnostics_for, idle, initialize, open_document, write_workspace
from lsprotocol import types

from lsp_server.store import (
    ContentRecord,
    FileRecord,
    NotAStoreError,
    Store,
    SymbolRecord,
    TestgenRun,
    Verdict,
    VerdictNotStored,
    testgen_runs,
)
from lsp_server.store.db import connect, diagnose
from lsp_server.store.journal import VerdictJournal, journal_path
from lsp_server.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION


def _verdict(fingerprint: str, kind: str = "dismissed") -> Verdict:
    return Verdict(fingerprint, kind, "E501", "src/a.py", "line too long")


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "workspace.db"


def test_open_creates_a_marked_store_and_remembers_verdicts(store_path: Path) -> None:
    with Store.open(store_path) as store:
        assert store.recovery_message is None
        store.set_verdict(_verdict("fp-1"))
        store.set_verdict(_verdict("fp-2", "false_positive"))
        store.set_verdict(_verdict("fp-1", "accepted"))
    with Store.open(store_path) as store:
        assert {fp: v.verdict for fp, v in store.verdicts().items()} == {
            "fp-1": "accepted",
            "fp-2": "false_positive",
        }
        assert list(store.verdicts(["fp-2", "unknown"])) == ["fp-2"]
        store.remove_verdict("fp-2")
        assert list(store.verdicts()) == ["fp-1"]
    with contextlib.closing(sqlite3.connect(store_path)) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unknown_verdict_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown verdict"):
        Verdict("fp", "maybe")  # type: ignore[arg-type]


def test_migrates_a_version_1_store_keeping_its_data(store_path: Path) -> None:
    store_path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(store_path, isolation_level=None)) as conn:
        MIGRATIONS[0](conn)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 1")
        conn.execute("INSERT INTO verdicts VALUES ('old', 'dismissed', 'R1', 'a.py', 'kept', 1.0)")
    with Store.open(store_path) as store:
        assert store.recovery_message is None
        assert store.verdicts()["old"].message == "kept"
        store.write_index_batch(
            [_content("h1", "parse_config", "Reads the settings file.")],
            [FileRecord("a.py", "h1", "python", 10, 1)],
        )
        assert [hit.name for hit in store.search_symbols("settings")] == ["parse_config"]
    with contextlib.closing(sqlite3.connect(store_path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def _content(digest: str, name: str, docstring: str | None = None) -> ContentRecord:
    symbol = SymbolRecord(
        name,
        "function",
        None,
        0,
        0,
        3,
        0,
        f"def {name}()",
        docstring,
        f"sym-{digest}",
        ("open", "read"),
    )
    return ContentRecord(digest, "python", 4, 40, (symbol,))


def _corrupt_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    third = len(data) // 3
    data[third : 2 * third] = os.urandom(third)
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _first_page(path: Path) -> None:
    """Scribble over the schema on page 1, past the header that carries our mark."""
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xde\xad" * 1998
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [(_corrupt_middle, "corrupt"), (_truncate, "corrupt"), (_first_page, "corrupt")],
)
def test_a_damaged_store_is_moved_aside_and_verdicts_survive(
    store_path: Path, damage, reason: str
) -> None:
    with Store.open(store_path) as store:
        # Enough rows that damage lands on real pages, not just the header.
        store.write_index_batch(
            [_content(f"h{i}", f"function_{i}", "x" * 200) for i in range(300)],
            [FileRecord(f"f{i}.py", f"h{i}", "python", 1, 1) for i in range(300)],
        )
        store.set_verdict(_verdict("keep-me"))
        store.set_verdict(_verdict("undo-me"))
        store.remove_verdict("undo-me")
    damage(store_path)

    with Store.open(store_path) as store:
        assert store.recovery_message is not None
        assert reason in store.recovery_message
        assert set(store.verdicts()) == {"keep-me"}
        assert store.file_states() == {}  # the index starts over
    moved = [
        p
        for p in store_path.parent.iterdir()
        if ".corrupt-" in p.name and "-wal" not in p.name and "-shm" not in p.name
    ]
    assert len(moved) == 1  # moved aside, never deleted


def _authorized_keys(path: Path) -> None:
    path.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample user@host\n")


def _foreign(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, caption TEXT)")
        conn.commit()


def _foreign_with_our_table_names(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA application_id = 1234")
        for table in ("contents", "files", "symbols", "verdicts"):
            conn.execute(f"CREATE TABLE {table} (x)")
        conn.commit()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_authorized_keys, "not a SQLite database"),
        (_foreign, "another application's SQLite database"),
        (_foreign_with_our_table_names, "another application's SQLite database"),
    ],
)
def test_a_file_that_is_not_gantrys_is_refused_and_left_byte_identical(
    store_path: Path, make, reason: str
) -> None:
    store_path.parent.mkdir(parents=True)
    make(store_path)
    before = store_path.read_bytes()
    with pytest.raises(NotAStoreError, match="not a Gantry context store") as refused:
        Store.open(store_path)
    assert reason in str(refused.value) and "leaves it untouched" in str(refused.value)
    with pytest.raises(NotAStoreError):
        diagnose(store_path)  # what `gantry doctor` reports
    assert store_path.read_bytes() == before
    assert [p.name for p in store_path.parent.iterdir()] == [store_path.name]


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """`path` refuses writes, from root too: root ignores file modes but not the immutable flag."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    made = subprocess.run(["chattr", "+i", path], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"running as root, and chattr +i is refused here: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", path], check=True)


def test_a_read_only_store_keeps_verdicts_in_the_journal_and_says_why(store_path: Path) -> None:
    with Store.open(store_path) as store:
        store.set_verdict(_verdict("before"))
    before = store_path.read_bytes()
    with _read_only(store_path):
        with Store.open(store_path) as store:
            with pytest.raises(VerdictNotStored, match="cannot be written.*verdicts.jsonl only"):
                store.set_verdict(_verdict("while-read-only"))
            assert set(store.verdicts()) == {"before", "while-read-only"}
        assert store_path.read_bytes() == before
        with Store.open(store_path) as store:  # the next session, still read-only
            assert set(store.verdicts()) == {"before", "while-read-only"}
            assert "cannot be written" in store.recovery_message
    with Store.open(store_path) as store:  # writable again: the journal fills the store
        assert store.recovery_message is None
    with contextlib.closing(sqlite3.connect(store_path)) as conn:
        stored = {row[0] for row in conn.execute("SELECT fingerprint FROM verdicts")}
    assert stored == {"before", "while-read-only"}


async def test_a_dismissal_on_a_read_only_store_is_journalled_and_the_user_told(
    tmp_path: Path,
) -> None:
    from lsp_server.config import Settings, store_path

    workspace = write_workspace(
        tmp_path / "ws",
        {
            "pyproject.toml": '[tool.ruff.lint]\nselect = ["E722"]\n',
            "app.py": "try:\n    pass\nexcept:\n    pass\n",
        },
    )

    async def session(dismiss: bool) -> tuple[int, list[str]]:
        """How many E722 findings were published, and what the user was told."""
        client = await SERVER.start()
        try:
            await initialize(client, workspace)
            uri = open_document(client, workspace / "app.py")
            found = [d for d in await diagnostics_for(client, uri, 1) if d.code == "E722"]
            if dismiss:
                fingerprint = found[0].data["fingerprint"]
                result = await client.workspace_execute_command_async(
                    types.ExecuteCommandParams(
                        command="gantry.dismissFinding",
                        arguments=[{"uri": uri, "fingerprint": fingerprint}],
                    )
                )
                assert result == {"fingerprint": fingerprint, "verdict": "dismissed"}
                await idle(client)
                assert not [d for d in client.diagnostics[uri] if d.code == "E722"]
            await client.shutdown_session()
            return len(found), [m.message for m in client.messages]
        finally:
            await client.stop()

    assert (await session(dismiss=False))[0] == 1  # creates the store
    store = store_path(workspace, Settings())
    with _read_only(store):
        _found, told = await session(dismiss=True)
        assert any("cannot be written" in m and "verdicts.jsonl only" in m for m in told), told
        assert (await session(dismiss=False))[0] == 0  # the journal keeps it across sessions


@pytest.mark.parametrize("noticed_on", ["next write", "close"])
def test_a_store_deleted_under_a_running_store_is_rebuilt_with_its_verdicts(
    store_path: Path, noticed_on: str
) -> None:
    store = Store.open(store_path)
    store.set_verdict(_verdict("kept"))
    store.set_verdict(_verdict("undone"))
    store.remove_verdict("undone")
    for path in store_path.parent.iterdir():  # the store, its WAL and the journal
        path.unlink()
    expected = {"kept"}
    if noticed_on == "next write":
        store.set_verdict(_verdict("after"))
        expected.add("after")
        store.write_index_batch([_content("h", "f")], [FileRecord("a.py", "h", "python", 1, 1)])
        assert list(store.file_states()) == ["a.py"]  # reads follow the new file
    store.close()
    with Store.open(store_path) as reopened:
        assert set(reopened.verdicts()) == expected
    journalled = VerdictJournal(journal_path(store_path)).replay()
    assert {fp for fp, verdict in journalled.items() if verdict} == expected


def test_verdicts_are_salvaged_from_a_readable_store_when_the_journal_is_lost(
    store_path: Path,
) -> None:
    with Store.open(store_path) as store:
        store.set_verdict(_verdict("only-in-db"))
    journal_path(store_path).unlink()
    with contextlib.closing(sqlite3.connect(store_path)) as conn:
        conn.execute("PRAGMA application_id = 0")  # now looks foreign, but still readable
        conn.commit()
    with Store.open(store_path) as store:
        assert store.recovery_message is not None
        assert set(store.verdicts()) == {"only-in-db"}


def test_journal_last_line_wins_and_a_torn_line_is_ignored(store_path: Path) -> None:
    with Store.open(store_path) as store:
        store.set_verdict(_verdict("fp", "dismissed"))
        store.set_verdict(_verdict("fp", "accepted"))
    with journal_path(store_path).open("a") as journal:
        journal.write('{"fingerprint": "torn", "verd')
    store_path.unlink()  # a deleted cache: the journal alone restores verdicts
    with Store.open(store_path) as store:
        assert {fp: v.verdict for fp, v in store.verdicts().items()} == {"fp": "accepted"}
    lines = journal_path(store_path).read_text().splitlines()
    assert json.loads(lines[0])["verdict"] == "dismissed"


def test_all_writes_happen_on_the_writer_thread(store_path: Path) -> None:
    with Store.open(store_path) as store:
        writing_threads: set[int] = set()

        def trace(statement: str) -> None:
            if statement.split()[0].upper() in {"INSERT", "DELETE", "UPDATE", "BEGIN"}:
                writing_threads.add(threading.get_ident())

        store.writer.run(lambda conn: conn.set_trace_callback(trace))
        callers = [
            threading.Thread(target=store.set_verdict, args=(_verdict(f"fp-{i}"),))
            for i in range(8)
        ]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
        store.write_index_batch([_content("h", "f")], [FileRecord("a.py", "h", "python", 1, 1)])
        assert len(store.verdicts()) == 8
        assert writing_threads == {store.writer.thread.ident}

        # Reader connections refuse writes outright.
        reader = connect(store_path, read_only=True)
        with pytest.raises(sqlite3.OperationalError):
            reader.execute("DELETE FROM verdicts")
        reader.close()


def test_a_failed_write_rolls_back_and_reaches_the_caller(store_path: Path) -> None:
    with Store.open(store_path) as store:

        def half_then_fail(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO verdicts (fingerprint, verdict) VALUES ('x', 'accepted')")
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            store.writer.run(half_then_fail)
    with contextlib.closing(sqlite3.connect(store_path)) as conn:
        assert conn.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 0


def test_prune_drops_only_unreferenced_contents(store_path: Path) -> None:
    with Store.open(store_path) as store:
        store.write_index_batch(
            [_content("a", "alpha"), _content("b", "beta")],
            [FileRecord("x.py", "a", "python", 1, 1)],
        )
        assert store.known_contents(["a", "b"]) == {"a", "b"}  # kept until asked
        assert store.prune_contents() == 1
        assert store.known_contents(["a", "b"]) == {"a"}
        assert [hit.name for hit in store.users_of("read")] == ["alpha"]
        assert [hit.path for hit in store.definitions("alpha")] == ["x.py"]


def test_the_journal_is_never_written_through_a_link(store_path: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"export PATH=/usr/bin\n")
    store_path.parent.mkdir(parents=True, exist_ok=True)
    journal_path(store_path).symlink_to(victim)
    with Store.open(store_path) as store, pytest.raises(OSError):
        store.set_verdict(Verdict("fp", "dismissed", "F401", "a.py", "m", 1.0))
    assert victim.read_bytes() == b"export PATH=/usr/bin\n"


def test_testgen_runs_are_recorded_newest_first_and_bounded(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setattr(testgen_runs, "KEEP", 3)
    with Store.open(store_path) as store:
        runs = [
            store.record_testgen_run(
                TestgenRun(f"pkg/m{i % 2}.py", ("f", "C.g"), i, 1, 2.5, 0, '{"stages": []}')
            )
            for i in range(5)
        ]
        assert [run.id for run in runs] == [1, 2, 3, 4, 5]
    with Store.open(store_path) as store:  # it lasts
        newest = store.testgen_runs()
        assert [run.kept for run in newest] == [4, 3, 2]  # the oldest beyond KEEP are gone
        assert newest[0] == runs[4] and newest[0].symbols == ("f", "C.g")
        assert [run.kept for run in store.testgen_runs("pkg/m1.py")] == [3]
        assert store.testgen_runs(limit=1) == [runs[4]]
