"""The durable outbox's rules, on real SQLite files; time is moved by a fake clock, never slept."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest
import queue_child

from remote_exec.jobs import JobKind, JobState, Priority, Resources
from remote_exec.queue import (
    APPLICATION_ID,
    BACKOFF_CAP_S,
    GROW_WAL_AFTER,
    SCHEMA_VERSION,
    JobQueue,
    OnEventLoopError,
    QueueFileError,
    new_owner,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def q(tmp_path: Path, clock: Clock) -> JobQueue:
    queue = JobQueue(tmp_path / "queue.db", clock=clock)
    yield queue
    queue.close()


def test_file_settings(q: JobQueue) -> None:
    conn = sqlite3.connect(q.path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert q._conn().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    conn.close()


def test_a_version_1_queue_is_migrated_and_keeps_its_jobs(tmp_path: Path) -> None:
    """Queues written before jobs remembered their gateway gain the column, jobs intact."""
    path = tmp_path / "v1.db"
    with JobQueue(path) as q:
        job, _ = q.enqueue("k", JobKind.EXEC, {"a": 1})
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX jobs_pending")
    conn.execute("ALTER TABLE jobs DROP COLUMN fresh")
    conn.execute("ALTER TABLE jobs DROP COLUMN placed")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with JobQueue(path) as q:
        assert q.get(job.id) == job
        claimed = q.claim("w")
        assert q.placed(job.id, "w", "gpu-box") and q.get(job.id).placed == "gpu-box"
        # A reclaimed lease keeps it: the next runner asks that gateway first.
        assert claimed is not None and q.heartbeat(job.id, "w", lease_s=-1)
        assert q.reclaim_expired() == 1 and q.get(job.id).placed == "gpu-box"


def test_a_version_2_queue_gets_the_partial_indexes_and_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    with JobQueue(path) as q:
        pending, _ = q.enqueue("pending", JobKind.EXEC, {"a": 1})
        done, _ = q.enqueue("done", JobKind.EXEC, {"a": 2}, priority=Priority.INTERACTIVE)
        assert q.claim("w").id == done.id and q.complete(done.id, "w", {"ok": True})
    conn = sqlite3.connect(path, isolation_level=None)
    for name in ("jobs_pending", "jobs_leased", "jobs_not_pending"):
        conn.execute(f"DROP INDEX {name}")
    conn.execute("ALTER TABLE jobs DROP COLUMN fresh")
    conn.execute("CREATE INDEX jobs_claim ON jobs (state, priority, created_at, id)")
    conn.execute("CREATE INDEX jobs_due ON jobs (state, not_before)")
    conn.execute("CREATE INDEX jobs_updated ON jobs (state, updated_at)")
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    with JobQueue(path) as q:
        assert q.get(pending.id) == pending
        assert q.counts()[JobState.DONE] == 1 and q.counts()[JobState.PENDING] == 1
        assert q.claim("w").id == pending.id
    conn = sqlite3.connect(path)
    indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"jobs_pending", "jobs_leased", "jobs_not_pending"} <= indexes
    assert not indexes & {"jobs_claim", "jobs_due", "jobs_updated"}
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


# Schema 3 as Gantry wrote it, before an enqueue left filing the job to the next claim.
_SCHEMA_3 = """
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    resources TEXT NOT NULL,
    gpus INTEGER GENERATED ALWAYS AS (json_extract(resources, '$.gpus')) VIRTUAL,
    priority INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    not_before REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    result TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    placed TEXT
);
CREATE INDEX jobs_pending ON jobs (priority, created_at, id) WHERE state = 'pending';
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE state = 'leased';
CREATE INDEX jobs_not_pending ON jobs (state, updated_at) WHERE state <> 'pending';
"""
_COLUMNS_3 = (
    "id, key, kind, payload, resources, priority, state, attempts, max_attempts, not_before,"
    " lease_owner, lease_until, result, error, created_at, updated_at, placed"
)


def test_a_version_3_queue_is_migrated_in_place_and_loses_nothing(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "v3.db"
    now = clock.now
    cpu = '{"gpus": 0, "cpus": 1, "memory_mb": 2048, "labels": {}}'
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(_SCHEMA_3)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 3")
    rows = [  # key, priority, state, attempts, not_before, owner, lease_until, result, error, t
        ("background", 10, "pending", 0, now - 5, None, None, None, None, now - 5),
        ("interactive", 0, "pending", 0, now - 1, None, None, None, None, now - 1),
        ("retry-later", 0, "pending", 1, now + 100, None, None, None, "HTTP 529", now - 9),
        ("leased", 10, "leased", 0, now - 8, "w1", now + 30, None, None, now - 8),
        ("done", 10, "done", 0, now - 7, None, None, '{"ok": true}', None, now - 7),
        ("dead", 10, "dead", 5, now - 6, None, None, None, "boom", now - 6),
    ]
    for key, priority, state, attempts, due, owner, until, result, error, t in rows:
        conn.execute(
            f"INSERT INTO jobs ({_COLUMNS_3}) VALUES"
            " (NULL, ?, 'exec', ?, ?, ?, ?, ?, 5, ?, ?, ?, ?, ?, ?, ?, 'gpu-box')",
            (key, f'{{"k": "{key}"}}', cpu, priority, state, attempts, due, owner, until)
            + (result, error, t, t),
        )
    before = conn.execute(f"SELECT {_COLUMNS_3} FROM jobs ORDER BY id").fetchall()
    conn.close()

    with JobQueue(path, clock=clock) as q:
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute(f"SELECT {_COLUMNS_3} FROM jobs ORDER BY id").fetchall() == before
        assert conn.execute("SELECT count(*) FROM jobs WHERE fresh IS NOT NULL").fetchone() == (0,)
        (index,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'jobs_pending'")
        assert "fresh IS NULL" in index[0]
        conn.close()
        assert q.counts() == {
            "pending": 3, "leased": 1, "done": 1, "dead": 1, "parked": 0, "cancelled": 0
        }  # fmt: skip
        # A known key still answers with its job, the done one with its result.
        done, created = q.enqueue("done", JobKind.EXEC, {"k": "again"})
        assert not created and done.state == JobState.DONE and done.result == {"ok": True}
        # The lease is kept: its owner heartbeats and completes it, nobody else can.
        leased = q.get_by_key("leased")
        assert not q.complete(leased.id, "w2", {}) and q.heartbeat(leased.id, "w1")
        assert q.complete(leased.id, "w1", {"ran": True})
        # Pending jobs are claimed in their order, a new one after them; the retry waits.
        q.enqueue("new", JobKind.EXEC, {"k": "new"})
        claimed = [q.claim("w3").key for _ in range(3)]
        assert claimed == ["interactive", "background", "new"] and q.claim("w3") is None
        assert q.next_due() == now + 30  # the leases just taken
        assert q.get_by_key("retry-later").not_before == now + 100
        assert q.get_by_key("dead").error == "boom" and q.retry(q.get_by_key("dead").id)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()


def test_reopen_keeps_jobs(tmp_path: Path, q: JobQueue) -> None:
    job, _ = q.enqueue("k", JobKind.EXEC, {"a": 1})
    with JobQueue(tmp_path / "queue.db") as again:
        assert again.get(job.id) == job


def test_refuses_foreign_and_newer_files(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = foreign.read_bytes()
    keys = tmp_path / "authorized_keys"
    keys.write_bytes(b"ssh-ed25519 AAAA victim\n")
    for path in (foreign, keys):
        with pytest.raises(QueueFileError, match="not a Gantry queue"):
            JobQueue(path)
    # Refused before anything wrote to them (switching to WAL alone rewrites the header).
    assert foreign.read_bytes() == before and keys.read_bytes() == b"ssh-ed25519 AAAA victim\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["authorized_keys", "foreign.db"]
    newer = tmp_path / "newer.db"
    JobQueue(newer).close()
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(QueueFileError, match="newer"):
        JobQueue(newer)


def test_a_producer_without_a_claimer_keeps_the_wal_bounded(tmp_path: Path) -> None:
    """Enqueues alone checkpoint as they go, so the WAL never passes the size it has between
    checkpoints; a producer in a burst grows it to that size early (commits that overwrite are
    cheaper than commits that append), and the growth, rolled back, leaves nothing behind."""
    path = tmp_path / "queue.db"
    wal = Path(f"{path}-wal")
    # NORMAL: the same WAL and checkpoints as FULL, without the fsyncs that make a test slow.
    with JobQueue(path, synchronous="NORMAL") as q:
        conn = q._conn()
        frame = 24 + conn.execute("PRAGMA page_size").fetchone()[0]
        between_checkpoints = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] * frame
        payload = {"text": "x" * 1000}  # an inference request's size: ~3 frames a commit
        sizes = []
        for i in range(2500):  # ~7,000 frames, ~7 checkpoints
            q.enqueue(f"job-{i}", JobKind.EXEC, payload)
            sizes.append(wal.stat().st_size)
        assert sizes[GROW_WAL_AFTER - 2] < between_checkpoints // 4  # before: one commit each
        assert sizes[GROW_WAL_AFTER - 1] >= between_checkpoints  # grown once
        assert max(sizes) <= 32 + between_checkpoints + 16 * frame  # and never past it
        assert q.counts()["pending"] == 2500
        assert [q.claim("w").key for _ in range(2)] == ["job-0", "job-1"]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "wal_growth" not in tables
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA cache_size").fetchone()[0] == -2000  # restored
    # A reopened queue (the WAL was removed on close) has every job.
    with JobQueue(path) as q:
        assert q.counts()["pending"] == 2498 and q.get_by_key("job-2499") is not None


def test_enqueue_is_idempotent_on_key(q: JobQueue) -> None:
    job, created = q.enqueue(
        "unit-1", JobKind.INFERENCE, {"prompt": "x"}, resources=Resources(gpus=1), max_attempts=3
    )
    assert created
    assert (job.state, job.attempts, job.max_attempts) == (JobState.PENDING, 0, 3)
    assert job.resources == Resources(gpus=1)
    assert job.kind == "inference" and job.payload == {"prompt": "x"}
    again, created = q.enqueue("unit-1", JobKind.INFERENCE, {"prompt": "other"})
    assert not created and again == job
    # Even a finished job answers for its key, with its result.
    owner = new_owner()
    q.complete(q.claim(owner).id, owner, {"answer": 42})
    done, created = q.enqueue("unit-1", JobKind.INFERENCE, {"prompt": "x"})
    assert not created and done.state == JobState.DONE and done.result == {"answer": 42}
    assert q.counts()[JobState.DONE] == 1
    # The job enqueue returns (built from its arguments) is the row as stored.
    urgent, _ = q.enqueue("unit-2", JobKind.EXEC, {"argv": ["x"]}, priority=Priority.INTERACTIVE)
    assert q.get(urgent.id) == urgent


def test_claim_order_priority_then_age(q: JobQueue, clock: Clock) -> None:
    for name, priority in [("bg-old", Priority.BACKGROUND), ("int-old", Priority.INTERACTIVE)]:
        q.enqueue(name, JobKind.EXEC, {}, priority=priority)
        clock.now += 1
    q.enqueue("bg-new", JobKind.EXEC, {})
    q.enqueue("int-new", JobKind.EXEC, {}, priority=Priority.INTERACTIVE)
    claimed = [q.claim("w").key for _ in range(4)]
    assert claimed == ["int-old", "int-new", "bg-old", "bg-new"]
    assert q.claim("w") is None


def test_jobs_enqueued_since_the_last_claim_are_counted_due_and_claimed_in_order(
    q: JobQueue, clock: Clock
) -> None:
    """An enqueue leaves filing the job among the pending ones to the next claim: until then
    counts and next_due see it, cancel and retry work on it, and the claim order is kept."""
    q.enqueue("bg-filed", JobKind.EXEC, {})
    first, _ = q.enqueue("first", JobKind.EXEC, {}, priority=Priority.INTERACTIVE)
    assert q.claim("w").key == "first" and q.complete(first.id, "w", {})
    clock.now += 1
    q.enqueue("bg-later", JobKind.EXEC, {}, not_before=clock.now + 5)
    retried, _ = q.enqueue("retried", JobKind.EXEC, {}, priority=Priority.INTERACTIVE)
    newest, _ = q.enqueue("newest", JobKind.EXEC, {})
    assert q.cancel(retried.id) and q.counts()["pending"] == 3
    assert q.next_due() == clock.now - 1  # bg-filed's
    assert q.retry(retried.id) and q.counts()["pending"] == 4
    # The newest row goes and the next job takes its id: it is found all the same.
    assert q.cancel(newest.id) and q.prune(older_than_s=-1) == 2
    reused, _ = q.enqueue("reused", JobKind.EXEC, {})
    assert reused.id == newest.id and q.counts()["pending"] == 4
    assert [q.claim("w").key for _ in range(3)] == ["retried", "bg-filed", "reused"]
    assert q.claim("w") is None and q.next_due() == clock.now + 5
    clock.now += 5
    assert q.claim("w").key == "bg-later"


def test_not_before_and_next_due(q: JobQueue, clock: Clock) -> None:
    assert q.next_due() is None
    q.enqueue("later", JobKind.EXEC, {}, not_before=clock.now + 60)
    assert q.claim("w") is None
    assert q.next_due() == clock.now + 60
    clock.now += 60
    job = q.claim("w", lease_s=10)
    assert job is not None and job.key == "later"
    # Only a leased job left: a worker should wake when its lease can be reclaimed.
    assert q.next_due() == clock.now + 10


def test_claim_filters_by_kind_and_gpus(q: JobQueue) -> None:
    q.enqueue("gpu", JobKind.EXEC, {}, resources=Resources(gpus=1), priority=Priority.INTERACTIVE)
    q.enqueue("infer", JobKind.INFERENCE, {}, priority=Priority.INTERACTIVE)
    q.enqueue("cpu", JobKind.EXEC, {})
    assert q.next_due(kinds=[JobKind.EXEC], max_gpus=0) is not None
    cpu = q.claim("local", kinds=[JobKind.EXEC], max_gpus=0)
    assert cpu.key == "cpu"
    assert q.claim("local", kinds=[JobKind.EXEC], max_gpus=0) is None
    q.complete(cpu.id, "local", {})
    # Nothing a CPU-only exec worker could take: it must not be woken for the GPU job.
    assert q.next_due(kinds=[JobKind.EXEC], max_gpus=0) is None
    assert q.claim("remote", max_gpus=1).key == "gpu"
    assert q.claim("any").key == "infer"


def test_lease_expiry_reclaim_and_fencing(q: JobQueue, clock: Clock) -> None:
    job, _ = q.enqueue("k", JobKind.EXEC, {})
    first = q.claim("a", lease_s=30)
    assert first.lease_owner == "a" and first.lease_until == clock.now + 30
    assert q.claim("b") is None  # leased, not expired
    clock.now += 20
    assert q.heartbeat(job.id, "a", lease_s=30)
    assert not q.heartbeat(job.id, "b")
    clock.now += 31  # expired, but nobody reclaimed it yet: still a's
    assert q.heartbeat(job.id, "a", lease_s=5)
    clock.now += 6
    second = q.claim("b")
    assert second.id == job.id and second.lease_owner == "b"
    assert second.attempts == 1 and "lease expired" in second.error  # a vanished: an attempt
    # The stale owner is fenced off from every outcome.
    assert not q.heartbeat(job.id, "a")
    assert not q.complete(job.id, "a", {"stale": True})
    assert q.fail(job.id, "a", "boom") is None
    assert not q.release(job.id, "a", not_before=clock.now, reason="x")
    assert not q.park(job.id, "a", "x")
    assert q.get(job.id).lease_owner == "b"
    assert q.complete(job.id, "b", {"ok": True})
    assert not q.complete(job.id, "b", {"twice": True})
    assert q.get(job.id).result == {"ok": True}


def test_complete_after_expiry_when_not_reclaimed(q: JobQueue, clock: Clock) -> None:
    job, _ = q.enqueue("k", JobKind.EXEC, {})
    q.claim("a", lease_s=1)
    clock.now += 100
    assert q.complete(job.id, "a", {"late": True})
    assert q.get(job.id).state == JobState.DONE


def test_reclaim_expired_counts_attempts_until_dead(q: JobQueue, clock: Clock) -> None:
    job, _ = q.enqueue("poison", JobKind.EXEC, {}, max_attempts=2)
    q.claim("a", lease_s=1)
    clock.now += 2
    assert q.reclaim_expired() == 1
    assert q.get(job.id).state == JobState.PENDING
    q.claim("b", lease_s=1)
    clock.now += 2
    assert q.reclaim_expired() == 1
    assert q.get(job.id).state == JobState.DEAD
    assert q.reclaim_expired() == 0


def test_fail_backs_off_then_dead_is_kept(q: JobQueue, clock: Clock) -> None:
    job, _ = q.enqueue("k", JobKind.EXEC, {}, max_attempts=3)
    q.claim("w")
    failed = q.fail(job.id, "w", "first")
    assert (failed.state, failed.attempts, failed.error) == (JobState.PENDING, 1, "first")
    assert failed.lease_owner is None
    # Default backoff: exponential with jitter, so between half and all of the base delay.
    assert clock.now + 1.0 <= failed.not_before <= clock.now + 2.0
    assert q.claim("w") is None
    clock.now = failed.not_before
    q.claim("w")
    assert q.fail(job.id, "w", "second", retry_in=7).not_before == clock.now + 7
    clock.now += 7
    q.claim("w")
    dead = q.fail(job.id, "w", "third")
    assert (dead.state, dead.attempts) == (JobState.DEAD, 3)
    assert q.prune(0) == 0  # DEAD is kept for inspection
    clock.now += 10**6
    assert q.claim("w") is None and q.get(job.id).state == JobState.DEAD


def test_backoff_is_capped(q: JobQueue, clock: Clock) -> None:
    job, _ = q.enqueue("k", JobKind.EXEC, {}, max_attempts=100)
    for _ in range(30):
        clock.now += BACKOFF_CAP_S
        q.claim("w")
        failed = q.fail(job.id, "w", "again")
    assert failed.not_before <= clock.now + BACKOFF_CAP_S


def test_fail_permanent(q: JobQueue) -> None:
    job, _ = q.enqueue("k", JobKind.EXEC, {})
    q.claim("w")
    assert q.fail(job.id, "w", "bad request", permanent=True).state == JobState.DEAD


def test_release_does_not_consume_attempts(q: JobQueue, clock: Clock) -> None:
    job, _ = q.enqueue("k", JobKind.INFERENCE, {}, max_attempts=1)
    for _ in range(5):
        q.claim("w")
        assert q.release(job.id, "w", not_before=clock.now + 30, reason="429 retry-after 30")
        assert q.claim("w") is None
        clock.now += 30
    released = q.get(job.id)
    assert (released.state, released.attempts, released.error) == (
        JobState.PENDING,
        0,
        "429 retry-after 30",
    )


def test_park_and_retry(q: JobQueue, clock: Clock) -> None:
    job, _ = q.enqueue("k", JobKind.INFERENCE, {})
    assert not q.retry(job.id)  # pending: nothing to retry
    q.claim("w")
    q.fail(job.id, "w", "x", retry_in=0)
    q.claim("w")
    assert q.park(job.id, "w", "spend limit reached")
    parked = q.get(job.id)
    assert (parked.state, parked.error, parked.attempts) == (
        JobState.PARKED,
        "spend limit reached",
        1,
    )
    clock.now += 10**6
    assert q.claim("w") is None  # parked waits for a person, not for time
    assert q.retry(job.id)
    retried = q.get(job.id)
    assert (retried.state, retried.attempts, retried.not_before) == (JobState.PENDING, 0, clock.now)
    assert q.claim("w").id == job.id


def test_retry_dead_and_cancelled(q: JobQueue) -> None:
    dead, _ = q.enqueue("dead", JobKind.EXEC, {})
    q.claim("w")
    q.fail(dead.id, "w", "x", permanent=True)
    cancelled, _ = q.enqueue("cancelled", JobKind.EXEC, {})
    q.cancel(cancelled.id)
    assert q.retry(dead.id) and q.retry(cancelled.id)
    assert {j.state for j in q.list()} == {JobState.PENDING}


def test_cancel_by_id(q: JobQueue) -> None:
    pending, _ = q.enqueue("a", JobKind.EXEC, {})
    leased, _ = q.enqueue("b", JobKind.EXEC, {})
    assert q.claim("w", kinds=None).id == pending.id
    assert q.cancel(pending.id)
    assert not q.cancel(pending.id)
    # The worker holding it learns on its next heartbeat or outcome.
    assert not q.heartbeat(pending.id, "w")
    assert not q.complete(pending.id, "w", {})
    assert q.get(pending.id).state == JobState.CANCELLED
    q.claim("w")
    q.complete(leased.id, "w", {})
    assert not q.cancel(leased.id)  # done stays done
    assert not q.cancel(12345)


def test_cancel_prefix(q: JobQueue) -> None:
    keys = ["file.py@v1#a", "file.py@v1#b", "file.py@v10#a", "file.py@v2#a", "f*le.py@v1#a"]
    ids = {key: q.enqueue(key, JobKind.INFERENCE, {})[0].id for key in keys}
    leased = q.claim("w")  # a leased one is cancelled too, and its owner is fenced out
    parked, _ = q.enqueue("file.py@v1#parked", JobKind.INFERENCE, {})
    q.claim("w2")
    q.park(parked.id, "w2", "spend")
    assert q.cancel_prefix("file.py@v1#") == [ids["file.py@v1#a"], ids["file.py@v1#b"], parked.id]
    assert not q.heartbeat(leased.id, "w") and not q.complete(leased.id, "w", {})
    assert q.cancel_prefix("f*le.py@") == [ids["f*le.py@v1#a"]]  # wildcards are literal
    assert q.cancel_prefix("file.py@v1#") == []  # already cancelled
    states = {j.key: j.state for j in q.list()}
    assert states["file.py@v10#a"] == states["file.py@v2#a"] == JobState.PENDING
    assert q.counts()[JobState.CANCELLED] == 4
    with pytest.raises(ValueError):
        q.cancel_prefix("")


def test_prune_and_purge(q: JobQueue, clock: Clock) -> None:
    done, _ = q.enqueue("done", JobKind.EXEC, {})
    q.claim("w")
    q.complete(done.id, "w", {})
    cancelled, _ = q.enqueue("cancelled", JobKind.EXEC, {})
    q.cancel(cancelled.id)
    dead, _ = q.enqueue("dead", JobKind.EXEC, {})
    q.claim("w")
    q.fail(dead.id, "w", "x", permanent=True)
    q.enqueue("pending", JobKind.EXEC, {})
    clock.now += 100
    assert q.prune(older_than_s=200) == 0
    assert q.prune(older_than_s=50) == 2
    assert sorted(j.key for j in q.list()) == ["dead", "pending"]
    assert q.purge_dead() == 1
    assert [j.key for j in q.list()] == ["pending"]
    # A pruned key is free again.
    assert q.enqueue("done", JobKind.EXEC, {})[1]


def test_get_list_counts(q: JobQueue) -> None:
    a, _ = q.enqueue("a", JobKind.EXEC, {})
    b, _ = q.enqueue("b", JobKind.EXEC, {})
    q.claim("w")
    assert q.get(999) is None and q.get_by_key("nope") is None
    assert q.get_by_key("b") == b
    assert q.get_many([b.id, 999, a.id]) == {a.id: q.get(a.id), b.id: b}
    assert [j.key for j in q.list()] == ["b", "a"]
    assert [j.key for j in q.list(states=[JobState.LEASED])] == ["a"]
    assert [j.key for j in q.list(limit=1)] == ["b"]
    assert q.counts() == {s.value: 0 for s in JobState} | {"pending": 1, "leased": 1}
    assert q.get(a.id).state == JobState.LEASED


async def test_refuses_to_run_on_the_event_loop(q: JobQueue) -> None:
    with pytest.raises(OnEventLoopError):
        q.enqueue("k", JobKind.EXEC, {})
    with pytest.raises(OnEventLoopError):
        q.counts()
    job, created = await asyncio.to_thread(q.enqueue, "k", JobKind.EXEC, {})
    assert created and job.key == "k"


def test_threads_share_one_queue(q: JobQueue) -> None:
    for i in range(200):
        q.enqueue(f"k{i}", JobKind.EXEC, {})
    claimed: list[list[int]] = [[] for _ in range(4)]

    def work(mine: list[int]) -> None:
        owner = new_owner()
        while (job := q.claim(owner)) is not None:
            assert q.complete(job.id, owner, {})
            mine.append(job.id)

    threads = [threading.Thread(target=work, args=(c,)) for c in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [i for mine in claimed for i in mine]
    assert sorted(ids) == list(range(1, 201))
    assert q.counts()[JobState.DONE] == 200


def test_two_processes_never_claim_the_same_job(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with JobQueue(path) as q:
        for i in range(300):
            q.enqueue(f"k{i}", JobKind.EXEC, {"i": i})
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    workers = [
        ctx.Process(target=queue_child.claim_all, args=(str(path), start, results))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    start.set()
    claimed = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    ids = [i for mine in claimed for i in mine]
    assert len(ids) == len(set(ids)) == 300
    with JobQueue(path) as q:
        assert q.counts()[JobState.DONE] == 300


def test_wake_makes_only_matching_waiting_jobs_due(tmp_path) -> None:
    now = [1000.0]
    queue = JobQueue(tmp_path / "q.sqlite", clock=lambda: now[0])
    queue.enqueue("down", "exec", {})
    busy, _ = queue.enqueue("busy", "exec", {})
    for job in (queue.claim("w"), queue.claim("w")):
        reason = "waiting for a remote: gateway down" if job.key == "down" else "429 busy"
        assert queue.release(job.id, "w", not_before=now[0] + 60, reason=reason)
    assert queue.wake("waiting for a remote: ") == 1
    assert queue.claim("w").key == "down"  # due now
    assert queue.claim("w") is None  # the retry-after is kept
    assert queue.get(busy.id).not_before == now[0] + 60
