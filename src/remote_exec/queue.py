"""The durable outbox: every remote job is written here before anything is sent anywhere.

One SQLite file (WAL, synchronous=FULL) that several processes may share, e.g. two editor
windows. A worker *claims* a job under `BEGIN IMMEDIATE`, which holds SQLite's single write lock,
so no two owners ever lease the same job. The lease expires unless renewed by `heartbeat`; an
expired lease is reclaimed by the next claim and counts as a failed attempt, so a job that kills
its worker every time ends DEAD instead of looping forever. Every outcome (`complete`, `fail`,
`release`, `park`) is fenced on the lease owner: a worker whose job was reclaimed or cancelled
learns it from a False/None answer and changes nothing.

Owners must be unique per claimer (see `new_owner`): fencing compares owner names.

The API is synchronous and thread-safe (one connection per thread). It blocks on disk and on other
processes' locks, so it must never be called on an asyncio event-loop thread: every call checks,
and raises `OnEventLoopError` there. Use `asyncio.to_thread`.
"""

from __future__ import annotations

import functools
import json
import os
import random
import socket
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

import attrs

from remote_exec.jobs import Job, JobState, Priority, Resources

APPLICATION_ID = 0x47515545  # "GQUE"; the context store is "GANT"
SCHEMA_VERSION = 4
BUSY_TIMEOUT_S = 5.0
BUSY_RETRIES = 10
BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 300.0
# Enqueues into one JobQueue after which it is in a burst and grows the WAL once (_grow_wal).
GROW_WAL_AFTER = 32
SPILL_CACHE_PAGES = 8
CPU_ONLY = Resources()
T = TypeVar("T")

_TABLE = """
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
    placed TEXT,
    fresh INTEGER
);
"""
_INDEXES = """
-- Partial indexes: an enqueue, the producer's hot path, writes the row and its key and nothing
-- else (each index is one more page written and synced in every commit): see `fresh` below.
-- Claiming walks the pending jobs in priority order.
CREATE INDEX IF NOT EXISTS jobs_pending ON jobs (priority, created_at, id)
    WHERE state = 'pending' AND fresh IS NULL;
-- Reclaiming expired leases, and next_due.
CREATE INDEX IF NOT EXISTS jobs_leased ON jobs (lease_until) WHERE state = 'leased';
-- counts(), prune by age, purge: queries say `state <> 'pending'` to use it.
CREATE INDEX IF NOT EXISTS jobs_not_pending ON jobs (state, updated_at) WHERE state <> 'pending';
"""
_SCHEMA = _TABLE + _INDEXES
_V4 = (  # version 2 had full indexes over every state; version 3 filed every pending job
    "DROP INDEX IF EXISTS jobs_claim; DROP INDEX IF EXISTS jobs_due;"
    " DROP INDEX IF EXISTS jobs_updated; DROP INDEX IF EXISTS jobs_pending;" + _INDEXES
)

# `fresh` is 1 on a job enqueued since the last claim: it is not yet filed in jobs_pending, and
# the next claim files every fresh job in one statement (a burst of enqueues then shares index
# pages instead of rewriting one per commit). A new row's id is the largest id + 1 and filing
# takes them all, so the fresh jobs are exactly the rows after the last filed one: found by id,
# with no index of their own. A claimed job was filed first, so a fresh job is pending, or was
# cancelled (and maybe retried) before any claim: it never has an error.
_FRESH = (
    "fresh = 1 AND id > ifnull((SELECT id FROM jobs WHERE fresh IS NULL ORDER BY id DESC LIMIT 1),"
    " 0)"
)
_FILE_FRESH = f"UPDATE jobs SET fresh = NULL WHERE {_FRESH}"
_INSERT = (
    "INSERT INTO jobs (key, kind, payload, resources, priority, state, max_attempts, not_before,"
    " created_at, updated_at, fresh) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, 1)"
    " ON CONFLICT (key) DO NOTHING"
)

# Filled into the claim and next_due queries; values are always bound parameters.
_FILTERS = "(:all_kinds OR kind IN (SELECT value FROM json_each(:kinds))) AND " + (
    "(:max_gpus IS NULL OR gpus <= :max_gpus)"
)


class OnEventLoopError(RuntimeError):
    """A queue call was made on a thread running an asyncio event loop, which it would block."""


class QueueFileError(Exception):
    """The file is another application's database, or was written by a newer Gantry."""


def new_owner(role: str = "worker") -> str:
    """A lease owner name unique to this claimer: host, process and a random part."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def backoff(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failure: exponential, capped, with jitter.

    The jitter keeps jobs that failed together (a remote going down) from retrying together.
    """
    delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.5, 1.0)


def _check_identity(db: sqlite3.Connection, path: Path) -> None:
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if app_id != APPLICATION_ID and (app_id or version or tables):
        raise QueueFileError(f"{path} is not a Gantry queue; it is left untouched")


def _refuse_foreign(path: Path) -> None:
    """Refuse a file that is not a queue before anything writes to it (switching to WAL
    rewrites the header), so that it stays byte-identical."""
    try:
        with path.open("rb") as file:
            header = file.read(100)
    except FileNotFoundError:
        return
    if not header:
        return  # new, or being created by another process: the migration fills it
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        raise QueueFileError(f"{path} is not a Gantry queue (not SQLite); it is left untouched")
    if int.from_bytes(header[68:72], "big") not in (0, APPLICATION_ID):
        raise QueueFileError(f"{path} is not a Gantry queue; it is left untouched")
    if header[18] == 2:
        # WAL already: switching again writes nothing, and the migration checks the rest in
        # its own transaction (a live queue's first page may still be in the WAL).
        return
    # A queue switches to WAL before anything else, so in rollback mode only an empty file
    # can become one; the main file is all there is to read.
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            _check_identity(conn, path)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise QueueFileError(f"{path} cannot be read as a Gantry queue ({exc})") from exc


class JobQueue:
    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> None:
        """Open (creating if needed) the queue at `path`.

        `synchronous="NORMAL"` may lose the last commits on power loss (never on a process
        crash); it exists for measurements, the default is what the outbox promises.
        """
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._synchronous = synchronous
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._enqueues = 0  # until the WAL is grown; then GROW_WAL_AFTER for good
        _refuse_foreign(self.path)
        self._migrate()

    # -- connections and schema ------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection; the single entry point, so the event-loop guard lives here."""
        if _on_event_loop():
            raise OnEventLoopError(
                "JobQueue blocks on disk and locks: call it via asyncio.to_thread, not on the loop"
            )
        conn = getattr(self._local, "conn", None)
        # A forked child must not share its parent's connection.
        if conn is None or self._local.pid != os.getpid():
            conn = self._open()
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        # Autocommit: every transaction below is explicit. Not shared across threads, but
        # check_same_thread=False lets close() close them all from one thread. `timeout` sets
        # busy_timeout before the first statement.
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            conn.row_factory = sqlite3.Row
            _retry_busy(lambda: conn.execute("PRAGMA journal_mode = WAL"))
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self) -> None:
        with self._write() as db:
            _check_identity(db, self.path)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise QueueFileError(
                    f"{self.path} was written by a newer Gantry (schema {version})"
                )
            if version == 0:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            if version == 1:
                db.execute("ALTER TABLE jobs ADD COLUMN placed TEXT")
            if 1 <= version <= 3:
                db.execute("ALTER TABLE jobs ADD COLUMN fresh INTEGER")  # NULL: filed
                for statement in _V4.split(";"):
                    if statement.strip():
                        db.execute(statement)
            if version < SCHEMA_VERSION:
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the lock up front, so it never fails half-way on BUSY."""
        conn = self._conn()
        _retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close every thread's connection; the queue must not be used afterwards."""
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- producing -------------------------------------------------------------------------

    def enqueue(
        self,
        key: str,
        kind: str,
        payload: dict[str, Any],
        *,
        resources: Resources = CPU_ONLY,
        priority: int = Priority.BACKGROUND,
        max_attempts: int = 5,
        not_before: float | None = None,
    ) -> tuple[Job, bool]:
        """Add a job unless `key` is known; returns (job, created).

        A known key returns the existing job whatever its state (a DONE job carries its result),
        so a producer that crashed between enqueue and recording can simply enqueue again.
        Once this returns, the job is on disk.
        """
        now = self._clock()
        due = now if not_before is None else not_before
        kind, priority = str(kind), int(priority)
        encoded = json.dumps(payload)  # before the write lock: nothing else waits on it
        params = (key, kind, encoded, _encoded(resources), priority, max_attempts, due, now, now)
        conn = self._conn()
        if self._enqueues < GROW_WAL_AFTER:  # racing threads: twice or never, both harmless
            self._enqueues += 1
            if self._enqueues == GROW_WAL_AFTER:
                self._grow_wal(conn)
        # The hot path is one statement in autocommit mode: its own transaction, which takes the
        # write lock as BEGIN IMMEDIATE would (busy_timeout, then _retry_busy) and is on disk
        # when it returns. Two statements fewer per enqueue than an explicit transaction.
        try:
            cursor = conn.execute(_INSERT, params)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
            cursor = _retry_busy(lambda: conn.execute(_INSERT, params))
        if cursor.rowcount == 0:  # the key is known: read its job in one transaction with a
            # second try, since it may have been pruned in between
            with self._write() as db:
                cursor = db.execute(_INSERT, params)
                if cursor.rowcount == 0:
                    existing = db.execute("SELECT * FROM jobs WHERE key = ?", (key,)).fetchone()
                    return _job(existing), False
        job_id = cursor.lastrowid
        # The row as inserted, built from what was given rather than read back and decoded:
        # enqueue is the producer's hot path, and the file's fsync is its floor.
        job = Job(
            id=job_id,
            key=key,
            kind=kind,
            payload=payload,
            resources=resources,
            priority=priority,
            state="pending",
            attempts=0,
            max_attempts=max_attempts,
            not_before=due,
            lease_owner=None,
            lease_until=None,
            result=None,
            error=None,
            created_at=now,
            updated_at=now,
            placed=None,
        )
        return job, True

    def _grow_wal(self, conn: sqlite3.Connection) -> None:
        """Grow the WAL file to the size it reaches between checkpoints, once, for a producer
        in a burst. SQLite rewrites the WAL from its start after each checkpoint and never
        shrinks it, but deletes it when the last connection closes: in a new session, until
        the first checkpoint, every commit appends, and its fdatasync must then also commit the
        file system's journal (the file's size changed), ~1.6x the time of a commit that
        overwrites (ext4 here: ~280 us against ~170 us, for the first ~375 enqueues).
        So: one transaction whose pages spill from a tiny page cache into the WAL (~4 MB,
        ~6 ms under the write lock, no fsync), rolled back. An uncommitted transaction's
        frames are never read, and later commits overwrite them. Best effort: any error
        leaves the WAL as it is."""
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        # A checkpoint follows the commit that passes wal_autocheckpoint frames: enqueues of a
        # few frames each never write many more.
        frames = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] + 4
        try:  # a 32-byte header, then frames of a 24-byte header and a page
            missing = frames - (os.stat(f"{self.path}-wal").st_size - 32) // (24 + page)
        except OSError:
            return
        if missing <= 0:
            return  # grown already, by another producer
        cache = conn.execute("PRAGMA cache_size").fetchone()[0]
        conn.execute(f"PRAGMA cache_size = {SPILL_CACHE_PAGES}")
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE wal_growth (b BLOB)")
            # One frame per page of the blob but those left in the cache, after the WAL's frames.
            blob = (missing + SPILL_CACHE_PAGES) * page
            conn.execute("INSERT INTO wal_growth VALUES (zeroblob(?))", (blob,))
        except sqlite3.Error:
            pass
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.execute(f"PRAGMA cache_size = {int(cache)}")

    # -- consuming -------------------------------------------------------------------------

    def claim(
        self,
        owner: str,
        *,
        kinds: Collection[str] | None = None,
        max_gpus: int | None = None,
        lease_s: float = 30.0,
    ) -> Job | None:
        """Lease the most urgent due job (lowest priority number, then oldest), or None.

        `kinds` limits the kinds taken; `max_gpus=0` takes only CPU jobs (a local fallback worker).
        Expired leases of any job are reclaimed first.
        """
        now = self._clock()
        with self._write() as db:
            self._reclaim(db, now)
            db.execute(_FILE_FRESH)
            row = db.execute(
                "UPDATE jobs SET state = 'leased', lease_owner = :owner, lease_until = :until,"
                " updated_at = :now WHERE id = (SELECT id FROM jobs INDEXED BY jobs_pending"
                " WHERE state = 'pending' AND fresh IS NULL"
                f" AND not_before <= :now AND {_FILTERS}"
                " ORDER BY priority, created_at, id LIMIT 1) RETURNING *",
                {
                    "owner": owner,
                    "until": now + lease_s,
                    "now": now,
                    **_filter_params(kinds, max_gpus),
                },
            ).fetchone()
        return None if row is None else _job(row)

    def heartbeat(self, job_id: int, owner: str, lease_s: float = 30.0) -> bool:
        """Extend our lease by `lease_s` from now; False if the job is no longer leased to us."""
        now = self._clock()
        return self._fenced(job_id, owner, "lease_until = ?, updated_at = ?", (now + lease_s, now))

    def complete(self, job_id: int, owner: str, result: dict[str, Any]) -> bool:
        """Record the result and mark the job DONE; False (and no change) unless it is ours.

        A lease that expired but was not yet reclaimed is still ours: nobody else has the job.
        """
        return self._fenced(
            job_id,
            owner,
            "state = 'done', result = ?, error = NULL, lease_owner = NULL, lease_until = NULL,"
            " updated_at = ?",
            (json.dumps(result), self._clock()),
        )

    def fail(
        self,
        job_id: int,
        owner: str,
        error: str,
        *,
        retry_in: float | None = None,
        permanent: bool = False,
    ) -> Job | None:
        """Count a failed attempt: back to pending after `retry_in` s (default: `backoff`), or
        DEAD when out of attempts or `permanent`. Returns the updated job, None if not ours."""
        now = self._clock()
        with self._write() as db:
            row = db.execute(
                "SELECT attempts, max_attempts FROM jobs"
                " WHERE id = ? AND state = 'leased' AND lease_owner = ?",
                (job_id, owner),
            ).fetchone()
            if row is None:
                return None
            attempts = row["attempts"] + 1
            if permanent or attempts >= row["max_attempts"]:
                state, not_before = JobState.DEAD.value, now
            else:
                delay = backoff(attempts) if retry_in is None else retry_in
                state, not_before = JobState.PENDING.value, now + delay
            updated = db.execute(
                "UPDATE jobs SET state = ?, attempts = ?, not_before = ?, error = ?,"
                " lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ? RETURNING *",
                (state, attempts, not_before, error, now, job_id),
            ).fetchone()
        return _job(updated)

    def release(self, job_id: int, owner: str, *, not_before: float, reason: str) -> bool:
        """Hand the job back without consuming an attempt: the remote said "later" (429/529
        with retry-after) or is down, which says nothing about the job itself."""
        return self._fenced(
            job_id,
            owner,
            "state = 'pending', not_before = ?, error = ?, lease_owner = NULL, lease_until = NULL,"
            " updated_at = ?",
            (not_before, reason, self._clock()),
        )

    def placed(self, job_id: int, owner: str, where: str) -> bool:
        """Note which remote the job was sent to. Kept when its lease is reclaimed, so that
        whoever runs it next asks that remote first (which answers for the same key) instead
        of running it a second time elsewhere."""
        return self._fenced(job_id, owner, "placed = ?", (where,))

    def park(self, job_id: int, owner: str, reason: str) -> bool:
        """PARKED: the job waits for a person (e.g. a spend limit), and only `retry` revives it."""
        return self._fenced(
            job_id,
            owner,
            "state = 'parked', error = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?",
            (reason, self._clock()),
        )

    def _fenced(self, job_id: int, owner: str, assignments: str, params: tuple[Any, ...]) -> bool:
        """Apply `assignments` only while the job is leased to `owner`."""
        with self._write() as db:
            cursor = db.execute(
                f"UPDATE jobs SET {assignments}"
                " WHERE id = ? AND state = 'leased' AND lease_owner = ?",
                (*params, job_id, owner),
            )
        return cursor.rowcount == 1

    # -- managing --------------------------------------------------------------------------

    def wake(self, reason_prefix: str) -> int:
        """Make due now the pending jobs that were released with a reason starting with the
        prefix (e.g. they wait for a remote that has just come back). Others keep their time:
        a retry-after is a promise to the remote."""
        now = self._clock()
        with self._write() as db:
            cursor = db.execute(
                "UPDATE jobs SET not_before = ?, updated_at = ?"
                " WHERE state = 'pending' AND fresh IS NULL AND not_before > ?"
                " AND substr(error, 1, length(?)) = ?",  # a fresh job has no error
                (now, now, now, reason_prefix, reason_prefix),
            )
        return cursor.rowcount

    def retry(self, job_id: int) -> bool:
        """DEAD, PARKED or CANCELLED -> PENDING now, with a fresh set of attempts.

        The last error stays visible until the job runs again.
        """
        now = self._clock()
        with self._write() as db:
            cursor = db.execute(
                "UPDATE jobs SET state = 'pending', attempts = 0, not_before = ?, updated_at = ?"
                " WHERE id = ? AND state IN ('dead', 'parked', 'cancelled')",
                (now, now, job_id),
            )
        return cursor.rowcount == 1

    def cancel(self, job_id: int) -> bool:
        """Cancel a pending, leased or parked job; a leased job's owner learns it when its next
        heartbeat or outcome is refused."""
        return self._cancel("id = ?", (job_id,)) == [job_id]

    def cancel_prefix(self, key_prefix: str) -> list[int]:
        """Cancel, in one transaction, every pending, leased or parked job whose key starts with
        `key_prefix` (work superseded by a newer document version); returns their ids."""
        if not key_prefix:
            raise ValueError("an empty prefix would cancel every job")
        # GLOB is case-sensitive and can use the key index; bracket its wildcards to match them.
        pattern = "".join(f"[{c}]" if c in "*?[" else c for c in key_prefix) + "*"
        return self._cancel("key GLOB ?", (pattern,))

    def _cancel(self, where: str, params: tuple[Any, ...]) -> list[int]:
        with self._write() as db:
            rows = db.execute(
                "UPDATE jobs SET state = 'cancelled', lease_owner = NULL, lease_until = NULL,"
                f" updated_at = ? WHERE {where} AND state IN ('pending', 'leased', 'parked')"
                " RETURNING id",
                (self._clock(), *params),
            ).fetchall()
        return sorted(row["id"] for row in rows)

    def reclaim_expired(self) -> int:
        """Return jobs whose lease expired to pending (or DEAD); claim also does this."""
        with self._write() as db:
            return self._reclaim(db, self._clock())

    def _reclaim(self, db: sqlite3.Connection, now: float) -> int:
        # The owner vanished or hung mid-job: that counts as an attempt.
        cursor = db.execute(
            "UPDATE jobs SET state = CASE WHEN attempts + 1 >= max_attempts THEN 'dead'"
            " ELSE 'pending' END, attempts = attempts + 1, not_before = :now,"
            " error = 'lease expired (owner ' || lease_owner || ')',"
            " lease_owner = NULL, lease_until = NULL, updated_at = :now"
            " WHERE state = 'leased' AND lease_until < :now",
            {"now": now},
        )
        return cursor.rowcount

    def prune(self, older_than_s: float) -> int:
        """Delete DONE and CANCELLED jobs last touched more than `older_than_s` ago.

        DEAD jobs are kept for inspection: see `purge_dead`.
        """
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM jobs WHERE state <> 'pending' AND state IN ('done', 'cancelled')"
                " AND updated_at < ?",
                (self._clock() - older_than_s,),
            )
        return cursor.rowcount

    def purge_dead(self) -> int:
        with self._write() as db:
            return db.execute(
                "DELETE FROM jobs WHERE state <> 'pending' AND state = 'dead'"
            ).rowcount

    # -- reading ---------------------------------------------------------------------------

    def get(self, job_id: int) -> Job | None:
        row = self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def get_many(self, job_ids: Collection[int]) -> dict[int, Job]:
        """The jobs with these ids that exist, by id: one query for any number."""
        rows = self._conn().execute(
            "SELECT * FROM jobs WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(job_ids)),),
        )
        return {row["id"]: _job(row) for row in rows}

    def get_by_key(self, key: str) -> Job | None:
        row = self._conn().execute("SELECT * FROM jobs WHERE key = ?", (key,)).fetchone()
        return None if row is None else _job(row)

    def list(self, states: Collection[str] | None = None, limit: int = 100) -> list[Job]:
        """Jobs in the given states (all when None), newest first."""
        rows = self._conn().execute(
            "SELECT * FROM jobs WHERE ? OR state IN (SELECT value FROM json_each(?))"
            " ORDER BY id DESC LIMIT ?",
            (states is None, json.dumps([str(s) for s in states or ()]), limit),
        )
        return [_job(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """Jobs per state, every state present."""
        counts = dict.fromkeys((s.value for s in JobState), 0)
        rows = self._conn().execute(
            "SELECT 'pending', (SELECT count(*) FROM jobs WHERE state = 'pending' AND fresh IS NULL)"
            f" + (SELECT count(*) FROM jobs WHERE state = 'pending' AND {_FRESH}) UNION ALL"
            " SELECT state, count(*) FROM jobs WHERE state <> 'pending' GROUP BY state"
        )
        counts.update((state, n) for state, n in rows)
        return counts

    def next_due(
        self, *, kinds: Collection[str] | None = None, max_gpus: int | None = None
    ) -> float | None:
        """When a claim with these filters may next find work, for a worker to sleep until:
        the earliest not_before of pending jobs, or lease expiry of leased ones (a reclaim).
        None when there is nothing pending or leased."""
        row = (
            self._conn()
            .execute(
                "SELECT min(due) FROM ("
                "SELECT min(not_before) AS due FROM jobs"
                f" WHERE state = 'pending' AND fresh IS NULL AND {_FILTERS}"
                " UNION ALL SELECT min(not_before) FROM jobs"
                f" WHERE state = 'pending' AND {_FRESH} AND {_FILTERS}"
                f" UNION ALL SELECT min(lease_until) FROM jobs WHERE state = 'leased' AND {_FILTERS})",
                _filter_params(kinds, max_gpus),
            )
            .fetchone()
        )
        return row[0]


def _retry_busy(work: Callable[[], T]) -> T:
    """`work()`, tried again after a short, growing, jittered pause while the file is busy.

    busy_timeout makes SQLite wait for most locks, but where waiting could deadlock it answers
    "database is locked" at once: switching a fresh file to WAL while another process opens it,
    or reading a WAL another process is recovering. A few processes opening one file do that.
    (The context store has the same loop: remote_exec shares nothing with lsp_server.)"""
    pause = 0.002
    for _ in range(BUSY_RETRIES):
        try:
            return work()
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
        time.sleep(pause * random.uniform(0.5, 1.0))
        pause = min(pause * 2, 0.5)
    return work()  # the last try: its error reaches the caller


def _busy(exc: sqlite3.OperationalError) -> bool:
    # Extended codes (SQLITE_BUSY_RECOVERY, ...) keep the primary code in the low byte.
    return (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF == sqlite3.SQLITE_BUSY


def _on_event_loop() -> bool:
    # Not importing asyncio keeps short-lived processes quick: if it was never imported, no loop
    # can be running.
    asyncio = sys.modules.get("asyncio")
    # The low-level form of get_running_loop: None instead of raising (every call asks).
    return asyncio is not None and asyncio._get_running_loop() is not None


def _filter_params(kinds: Collection[str] | None, max_gpus: int | None) -> dict[str, Any]:
    return {
        "all_kinds": kinds is None,
        "kinds": json.dumps([str(k) for k in kinds or ()]),
        "max_gpus": max_gpus,
    }


@functools.lru_cache(maxsize=64)
def _encoded(resources: Resources) -> str:
    """A job's resources as stored: a handful of distinct values, encoded once each."""
    return json.dumps(attrs.asdict(resources))


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        key=row["key"],
        kind=row["kind"],
        payload=json.loads(row["payload"]),
        resources=Resources(**json.loads(row["resources"])),
        priority=row["priority"],
        state=row["state"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        not_before=row["not_before"],
        lease_owner=row["lease_owner"],
        lease_until=row["lease_until"],
        result=None if row["result"] is None else json.loads(row["result"]),
        error=row["error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        placed=row["placed"],
    )
