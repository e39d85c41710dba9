"""Job records: in memory for speed, journaled to SQLite so a restart loses nothing it promised.

Why SQLite rather than a JSON file: one row per job is updated in place, atomically and durably
(WAL, synchronous=FULL), without rewriting the whole journal on every state change.

What a restart keeps:
- finished jobs (with their results): resubmitting a key answers 200 with that result and never
  runs the job again;
- queued jobs: their spec is journaled until they start, and they are handed to the backend again;
- jobs that were running become `lost`, with a reason: their half-finished attempt left nothing
  behind (each run has a private work directory) and reported nothing. The API answers their id
  with 404 (body: state and reason), which clients already read as "resubmit the same key"; that
  resubmission replaces the lost record and runs the job afresh, once.

What it forgets, so it can run for weeks: finished jobs older than `keep_finished_s` or beyond the
newest `max_finished`, from memory and journal alike, and the live output of finished jobs beyond
`finished_log_bytes` in all (oldest first; the result's tails stay).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shlex
import sqlite3
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import attrs
import cattrs

from remote_exec.gateway.config import Retention
from remote_exec.jobs import ExecResult, ExecSpec

LOST = "lost"
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "timed_out", LOST})
FAILURES = frozenset({"failed", "timed_out", LOST})
LOST_IN_RESTART = "the gateway stopped while the job ran; resubmit its key to run it again"
_COMMAND_CHARS = 300
_converter = cattrs.Converter()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    state TEXT NOT NULL,
    exit_code INTEGER,
    stdout_tail TEXT NOT NULL DEFAULT '',
    stderr_tail TEXT NOT NULL DEFAULT '',
    artifacts TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    UNIQUE (owner, key)
)
"""
# Added after the first release: journals written before gain them on open.
_LATER_COLUMNS = {
    "reason": "TEXT",
    "command": "TEXT NOT NULL DEFAULT ''",
    "spec": "TEXT",  # JSON, while the job is queued; NULL once it started
}
_COLUMNS = (
    "id, owner, key, state, exit_code, stdout_tail, stderr_tail, artifacts, created_at,"
    " started_at, finished_at, reason, command, spec"
)


class TooBusy(Exception):
    """The token has as many unfinished jobs as it may."""


@attrs.define(eq=False)
class JobRecord:
    id: str
    owner: str
    """The submitting token's id: keys and job ids are private to it."""
    key: str
    state: str = "queued"
    exit_code: int | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    artifacts: dict[str, str] = attrs.Factory(dict)
    created_at: float = attrs.Factory(time.time)
    started_at: float | None = None
    finished_at: float | None = None
    reason: str | None = None
    """Why a job ended without a result of its own (lost)."""
    command: str = ""
    """The argv, shortened, for the status page."""
    spec: ExecSpec | None = None
    """Only until the job ends (journaled only while it is queued)."""
    log: bytearray = attrs.Factory(bytearray)
    log_base: int = 0
    """Absolute offset of log[0]: older output was dropped to bound memory."""

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "state": self.state,
            "exit_code": self.exit_code,
            "stdout_tail": self.stdout_tail,
            "stderr_tail": self.stderr_tail,
            "artifacts": self.artifacts,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "reason": self.reason,
        }


@attrs.frozen
class Snapshot:
    """What the status page shows: unfinished jobs and the newest failures."""

    unfinished: list[JobRecord]
    failures: list[JobRecord]
    finished: int


class Registry:
    """All jobs of this gateway. Thread-safe: backends report from their own threads."""

    def __init__(
        self, journal_path: Path, log_retention_bytes: int, retention: Retention | None = None
    ) -> None:
        journal_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # It holds every token's outputs: the gateway's user alone may read it, however it was
        # made before. SQLite gives its -wal and -shm files the journal's own mode.
        journal_path.touch(mode=0o600)
        for suffix in ("", "-wal", "-shm"):
            with suppress(FileNotFoundError):
                os.chmod(f"{journal_path}{suffix}", 0o600)
        self._db = sqlite3.connect(journal_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        for column, kind in _LATER_COLUMNS.items():
            if column not in have:
                self._db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
        self._lock = threading.Lock()
        self._log_retention = log_retention_bytes
        self.retention = retention or Retention()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._jobs: dict[str, JobRecord] = {}
        self._by_key: dict[tuple[str, str], JobRecord] = {}
        self._unfinished: dict[str, JobRecord] = {}
        self._active: Counter[str] = Counter()
        """Unfinished jobs per owner (the per-token limit)."""
        self._finished: OrderedDict[str, JobRecord] = OrderedDict()
        """In the order they finished: the oldest is pruned first."""
        self._logged: OrderedDict[str, JobRecord] = OrderedDict()
        """Finished jobs still holding live output, oldest first, and its total size."""
        self._logged_bytes = 0
        self._recover()

    def _recover(self) -> None:
        """Load the journal: running jobs of the previous life are lost, queued ones wait again."""
        now = time.time()
        with self._transaction():
            self.lost_at_start = self._db.execute(
                "UPDATE jobs SET state = ?, reason = ?, finished_at = ?, spec = NULL"
                " WHERE state = 'running' OR (state = 'queued' AND spec IS NULL)",
                (LOST, LOST_IN_RESTART, now),
            ).rowcount
            self._prune_journal(now)
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM jobs ORDER BY finished_at IS NOT NULL, finished_at, created_at"
        )
        for row in rows:
            job = _from_row(row)
            if job.state == "queued" and job.spec is None:  # a spec this version cannot read
                job.state, job.reason, job.finished_at = LOST, LOST_IN_RESTART, now
                self._write_end(job)
                self.lost_at_start += 1
            self._index(job)

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop that log streamers wait on (set at app start-up)."""
        self._loop = loop

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- queries -----------------------------------------------------------------------------

    def get(self, owner: str, job_id: str) -> JobRecord | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job if job is not None and job.owner == owner else None

    def counts(self) -> dict[str, int]:
        with self._lock:
            states = [j.state for j in self._unfinished.values()]
        return {"running": states.count("running"), "queued": states.count("queued")}

    def in_use(self) -> tuple[int, int]:
        """(unfinished jobs, GPUs they asked for), every token's: what is not free."""
        with self._lock:  # `finished` drops a job's spec: read it under the lock
            live = [j.spec for j in self._unfinished.values()]
            return len(live), sum(spec.resources.gpus for spec in live if spec is not None)

    def queued(self) -> list[JobRecord]:
        """Jobs waiting for the backend (at start-up: those a previous life had queued)."""
        with self._lock:
            return [j for j in self._unfinished.values() if j.state == "queued"]

    def snapshot(self, failures: int = 20) -> Snapshot:
        with self._lock:
            newest_failures = []
            for job in reversed(self._finished.values()):
                if len(newest_failures) == failures:
                    break
                if job.state in FAILURES:
                    newest_failures.append(job)
            return Snapshot(list(self._unfinished.values()), newest_failures, len(self._finished))

    def read_log(self, job: JobRecord, offset: int) -> tuple[bytes, int, bool]:
        """Output from `offset` on (or from the oldest kept byte), the next offset, and done."""
        with self._lock:
            start = max(offset, job.log_base)
            chunk = bytes(job.log[start - job.log_base :])
            return chunk, start + len(chunk), job.done

    @contextmanager
    def watch(self, job: JobRecord) -> Iterator[asyncio.Event]:
        """An event set whenever the job produces output or changes state."""
        event = asyncio.Event()
        with self._lock:
            self._waiters.setdefault(job.id, set()).add(event)
        try:
            yield event
        finally:
            with self._lock:
                waiters = self._waiters[job.id]
                waiters.discard(event)
                if not waiters:
                    del self._waiters[job.id]

    # -- changes -----------------------------------------------------------------------------

    def create(
        self, owner: str, key: str, spec: ExecSpec, max_active: int
    ) -> tuple[JobRecord, bool]:
        """The job for (owner, key), and whether it is new. New jobs are journaled first.

        A lost job's key starts a new job (that is what resubmitting it asks for). Raises TooBusy
        when the owner already has `max_active` unfinished jobs (a known key is still answered:
        resubmitting is never refused).
        """
        with self._lock:
            existing = self._by_key.get((owner, key))
            if existing is not None and existing.state != LOST:
                return existing, False
            if self._active[owner] >= max_active:
                raise TooBusy
            job = JobRecord(
                id=secrets.token_hex(12), owner=owner, key=key, spec=spec, command=_command(spec)
            )
            with self._transaction():
                if existing is not None:
                    self._db.execute("DELETE FROM jobs WHERE id = ?", (existing.id,))
                self._db.execute(
                    "INSERT INTO jobs (id, owner, key, state, created_at, command, spec)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        job.id,
                        owner,
                        key,
                        job.state,
                        job.created_at,
                        job.command,
                        json.dumps(_converter.unstructure(spec)),
                    ),
                )
            if existing is not None:
                self._drop(existing)
            self._index(job)
            return job, True

    def forget(self, job: JobRecord) -> None:
        """Undo `create` when the backend refused the job (so the key can be retried)."""
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job.id,))
            self._drop(job)

    def request_cancel(self, job: JobRecord) -> bool:
        """False when the job had already finished. A job not yet started ends now, as
        cancelled, rather than when a worker gets to it (the backend is told to skip it)."""
        with self._lock:
            if job.done:
                return False
            queued = job.state == "queued"
        if queued:
            self.finished(job.id, ExecResult(state="cancelled", exit_code=None))
        return True

    def started(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.done:
                return
            job.state, job.started_at = "running", time.time()
            self._db.execute(
                "UPDATE jobs SET state = ?, started_at = ?, spec = NULL WHERE id = ?",
                (job.state, job.started_at, job.id),
            )
        self._notify(job_id)

    def output(self, job_id: str, data: bytes) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.done:
                return
            job.log += data
            if (excess := len(job.log) - self._log_retention) > 0:
                del job.log[:excess]
                job.log_base += excess
        self._notify(job_id)

    def finished(self, job_id: str, result: ExecResult) -> None:
        self._end(job_id, result, reason=None)

    def lose(self, job_id: str, reason: str) -> None:
        """End a job that will never report (its backend refused it again after a restart)."""
        self._end(job_id, ExecResult(state=LOST, exit_code=None), reason=reason)

    def prune(self, now: float | None = None) -> int:
        """Forget finished jobs past the retention; how many went."""
        with self._lock, self._transaction():
            return self._prune(time.time() if now is None else now)

    def _end(self, job_id: str, result: ExecResult, reason: str | None) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.done:
                return
            job.state = result.state
            job.exit_code = result.exit_code
            job.stdout_tail, job.stderr_tail = result.stdout_tail, result.stderr_tail
            job.artifacts = dict(result.artifacts)
            job.finished_at = time.time()
            job.started_at = job.started_at or job.finished_at
            job.reason = reason
            job.spec = None
            with self._transaction():
                self._write_end(job)
                self._mark_finished(job)
                self._prune(job.finished_at)
        self._notify(job_id)

    # -- bookkeeping (under self._lock) ----------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One commit (one fsync) for several statements."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _write_end(self, job: JobRecord) -> None:
        self._db.execute(
            "UPDATE jobs SET state = ?, exit_code = ?, stdout_tail = ?, stderr_tail = ?,"
            " artifacts = ?, started_at = ?, finished_at = ?, reason = ?, spec = NULL"
            " WHERE id = ?",
            (
                job.state,
                job.exit_code,
                job.stdout_tail,
                job.stderr_tail,
                json.dumps(job.artifacts),
                job.started_at,
                job.finished_at,
                job.reason,
                job.id,
            ),
        )

    def _index(self, job: JobRecord) -> None:
        self._jobs[job.id] = job
        self._by_key[(job.owner, job.key)] = job
        if job.done:
            self._finished[job.id] = job
        else:
            self._unfinished[job.id] = job
            self._active[job.owner] += 1

    def _mark_finished(self, job: JobRecord) -> None:
        if self._unfinished.pop(job.id, None) is not None:
            self._active[job.owner] -= 1
            if not self._active[job.owner]:
                del self._active[job.owner]
        self._finished[job.id] = job
        if job.log:
            self._logged[job.id] = job
            self._logged_bytes += len(job.log)
        while self._logged_bytes > self.retention.finished_log_bytes:
            _, oldest = self._logged.popitem(last=False)
            self._drop_log(oldest)

    def _drop_log(self, job: JobRecord) -> None:
        self._logged_bytes -= len(job.log)
        job.log_base += len(job.log)
        job.log = bytearray()

    def _drop(self, job: JobRecord) -> None:
        self._jobs.pop(job.id, None)
        if self._by_key.get((job.owner, job.key)) is job:
            del self._by_key[(job.owner, job.key)]
        if self._unfinished.pop(job.id, None) is not None:
            self._active[job.owner] -= 1
            if not self._active[job.owner]:
                del self._active[job.owner]
        self._finished.pop(job.id, None)
        if self._logged.pop(job.id, None) is not None:
            self._drop_log(job)

    def _prune(self, now: float) -> int:
        cutoff = now - self.retention.keep_finished_s
        gone = []
        for job in self._finished.values():
            if len(self._finished) - len(gone) <= self.retention.max_finished and (
                (job.finished_at or 0.0) >= cutoff
            ):
                break
            gone.append(job)
        for job in gone:
            self._drop(job)
        if gone:
            self._db.executemany("DELETE FROM jobs WHERE id = ?", [(j.id,) for j in gone])
        return len(gone)

    def _prune_journal(self, now: float) -> None:
        terminal = ", ".join(f"'{s}'" for s in sorted(TERMINAL))
        self._db.execute(
            f"DELETE FROM jobs WHERE state IN ({terminal}) AND finished_at < ?",
            (now - self.retention.keep_finished_s,),
        )
        self._db.execute(
            f"DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN ({terminal})"
            " ORDER BY finished_at DESC LIMIT -1 OFFSET ?)",
            (self.retention.max_finished,),
        )

    def _notify(self, job_id: str) -> None:
        with self._lock:
            events = list(self._waiters.get(job_id, ()))
        if self._loop is not None:
            for event in events:
                self._loop.call_soon_threadsafe(event.set)


def _command(spec: ExecSpec) -> str:
    text = shlex.join(spec.argv)
    return text if len(text) <= _COMMAND_CHARS else text[: _COMMAND_CHARS - 1] + "…"


def _from_row(row: tuple[Any, ...]) -> JobRecord:
    (id_, owner, key, state, exit_code, out, err, artifacts, created, started, finished) = row[:11]
    reason, command, spec = row[11:]
    loaded: ExecSpec | None = None
    if spec is not None:
        with suppress(ValueError, TypeError, cattrs.BaseValidationError):
            loaded = _converter.structure(json.loads(spec), ExecSpec)
    return JobRecord(
        id=id_,
        owner=owner,
        key=key,
        state=state,
        exit_code=exit_code,
        stdout_tail=out,
        stderr_tail=err,
        artifacts=json.loads(artifacts),
        created_at=created,
        started_at=started,
        finished_at=finished,
        reason=reason,
        command=command,
        spec=loaded,
    )
