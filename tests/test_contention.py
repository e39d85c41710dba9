"""Several real processes on one fresh SQLite file at once: opening, migrating and enqueueing
never fail because another process holds the file.

Each test starts its worker processes once; in every round they all wait at a barrier, then
open (and write to) the same fresh file together, so each round is a new race.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from lsp_server.store import Store, Verdict, db
from lsp_server.store.db import connect, diagnose
from lsp_server.store.schema import migrate
from remote_exec.queue import JobQueue

WORKERS = 4
ROUNDS = 80  # 320 opens of a fresh file per test
THREADS = 3
JOBS_PER_THREAD = 20

pytestmark = pytest.mark.timeout(300)


def _open_queue(directory: Path) -> None:
    with JobQueue(directory / "queue.db") as queue:
        queue.enqueue(f"job-{os.getpid()}", "exec", {})


def _open_store(directory: Path) -> None:
    with Store.open(directory / "store.db") as store:
        store.set_verdict(Verdict(f"fp-{os.getpid()}", "dismissed"))


def _enqueue_from_threads(directory: Path) -> None:
    """Each pool thread has its own connection: opened as the others enqueue."""
    with JobQueue(directory / "queue.db") as queue:

        def put(thread: int) -> None:
            for i in range(JOBS_PER_THREAD):
                queue.enqueue(f"{os.getpid()}-{thread}-{i}", "exec", {"i": i})

        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(put, range(THREADS)))


def _rounds(work: Callable[[Path], None], root: str, rounds: int, start: Any, results: Any):
    failures = []
    for round_ in range(rounds):
        start.wait(timeout=60)
        try:
            work(Path(root) / f"round-{round_}")
        except Exception as exc:
            failures.append(f"round {round_}: {type(exc).__name__}: {exc}")
    results.put(failures)


def _race(work: Callable[[Path], None], root: Path, rounds: int = ROUNDS) -> list[str]:
    """Run `work` in WORKERS processes at once, `rounds` times; the failures they saw."""
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(WORKERS), ctx.Queue()
    workers = [
        ctx.Process(target=_rounds, args=(work, str(root), rounds, start, results))
        for _ in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    failures = [failure for _ in workers for failure in results.get(timeout=240)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    return failures


def test_processes_opening_one_fresh_queue_at_once_never_fail(tmp_path: Path) -> None:
    assert _race(_open_queue, tmp_path) == []
    for round_ in range(ROUNDS):
        with JobQueue(tmp_path / f"round-{round_}" / "queue.db") as queue:
            assert sum(queue.counts().values()) == WORKERS


def test_processes_opening_one_fresh_store_at_once_never_fail(tmp_path: Path) -> None:
    assert _race(_open_store, tmp_path) == []
    for round_ in range(ROUNDS):
        directory = tmp_path / f"round-{round_}"
        with Store.open(directory / "store.db") as store:
            assert store.recovery_message is None
            assert len(store.verdicts()) == WORKERS
        assert not list(directory.glob("*.corrupt-*"))  # a store being created is not damage


def test_concurrent_enqueues_from_processes_never_raise(tmp_path: Path) -> None:
    rounds = 20
    assert _race(_enqueue_from_threads, tmp_path, rounds) == []
    for round_ in range(rounds):
        with JobQueue(tmp_path / f"round-{round_}" / "queue.db") as queue:
            assert sum(queue.counts().values()) == WORKERS * THREADS * JOBS_PER_THREAD


def test_a_store_migrated_while_it_is_being_diagnosed_is_not_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race behind a rare CI failure, made deterministic: another process commits the whole
    migration between two of the checker's reads. Read outside one snapshot, the checker saw
    "no mark" then "all of Gantry's tables" and moved a healthy store aside."""
    path = tmp_path / "store.db"
    creator = connect(path)  # the other process: WAL file created, not yet migrated
    real_connect = sqlite3.connect

    def connect_then_migrate_midway(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)

        def trace(statement: str) -> None:
            if "user_version" in statement and not creator.in_transaction:
                migrate(creator)

        conn.set_trace_callback(trace)
        return conn

    monkeypatch.setattr(db.sqlite3, "connect", connect_then_migrate_midway)
    try:
        assert diagnose(path) is None
    finally:
        monkeypatch.undo()
        creator.close()
    assert not list(tmp_path.glob("*.corrupt-*"))
