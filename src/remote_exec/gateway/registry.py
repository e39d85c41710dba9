"""Job records: in memory for speed, journaled to SQLite so restarts keep idempotency.

Why SQLite rather than a JSON file: one row per job is updated in place, atomically and durably
(WAL, synchronous=FULL), without rewriting the whole journal on every state change.

What a restart keeps: every job that had *finished* (with its result), so resubmitting its key
answers 200 with that result and never runs it again. A job still queued or running when the
gateway died is dropped on start: its id answers 404 and resubmitting its key runs it afresh,
once. (Its half-finished attempt left nothing behind: each run has a private work directory.)
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import attrs

from remote_exec.jobs import ExecResult, ExecSpec

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "timed_out"})

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


class TooBusy(Exception):
    """The token has as many unfinished jobs as it may."""


@attrs.define
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
    spec: ExecSpec | None = None
    """Only while live; never journaled (the client still has it)."""
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
        }


class Registry:
    """All jobs of this gateway. Thread-safe: backends report from their own threads."""

    def __init__(self, journal_path: Path, log_retention_bytes: int) -> None:
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
        self._lock = threading.Lock()
        self._retention = log_retention_bytes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[str, set[asyncio.Event]] = {}
        # Unfinished jobs of a previous life are forgotten: see the module docstring.
        self._db.execute("DELETE FROM jobs WHERE state IN ('queued', 'running')")
        self._jobs: dict[str, JobRecord] = {}
        self._by_key: dict[tuple[str, str], JobRecord] = {}
        for row in self._db.execute("SELECT * FROM jobs"):
            self._index(_from_row(row))

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
            states = [j.state for j in self._jobs.values()]
        return {"running": states.count("running"), "queued": states.count("queued")}

    def in_use(self) -> tuple[int, int]:
        """(unfinished jobs, GPUs they asked for), every token's: what is not free."""
        with self._lock:  # `finished` drops a job's spec: read it under the lock
            live = [j.spec for j in self._jobs.values() if not j.done]
            return len(live), sum(spec.resources.gpus for spec in live if spec is not None)

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

        Raises TooBusy when the owner already has `max_active` unfinished jobs (a known key is
        still answered: resubmitting is never refused).
        """
        with self._lock:
            if (existing := self._by_key.get((owner, key))) is not None:
                return existing, False
            if sum(1 for j in self._jobs.values() if j.owner == owner and not j.done) >= max_active:
                raise TooBusy
            job = JobRecord(id=secrets.token_hex(12), owner=owner, key=key, spec=spec)
            self._db.execute(
                "INSERT INTO jobs (id, owner, key, state, created_at) VALUES (?, ?, ?, ?, ?)",
                (job.id, owner, key, job.state, job.created_at),
            )
            self._index(job)
            return job, True

    def forget(self, job: JobRecord) -> None:
        """Undo `create` when the backend refused the job (so the key can be retried)."""
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job.id,))
            self._jobs.pop(job.id, None)
            self._by_key.pop((job.owner, job.key), None)

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
            job = self._jobs[job_id]
            if job.done:
                return
            job.state, job.started_at = "running", time.time()
            self._db.execute(
                "UPDATE jobs SET state = ?, started_at = ? WHERE id = ?",
                (job.state, job.started_at, job.id),
            )
        self._notify(job_id)

    def output(self, job_id: str, data: bytes) -> None:
        with self._lock:
            job = self._jobs[job_id]
            job.log += data
            if (excess := len(job.log) - self._retention) > 0:
                del job.log[:excess]
                job.log_base += excess
        self._notify(job_id)

    def finished(self, job_id: str, result: ExecResult) -> None:
        with self._lock:
            job = self._jobs[job_id]
            if job.done:
                return
            job.state = result.state
            job.exit_code = result.exit_code
            job.stdout_tail, job.stderr_tail = result.stdout_tail, result.stderr_tail
            job.artifacts = dict(result.artifacts)
            job.finished_at = time.time()
            job.started_at = job.started_at or job.finished_at
            job.spec = None
            self._db.execute(
                "UPDATE jobs SET state = ?, exit_code = ?, stdout_tail = ?, stderr_tail = ?,"
                " artifacts = ?, started_at = ?, finished_at = ? WHERE id = ?",
                (
                    job.state,
                    job.exit_code,
                    job.stdout_tail,
                    job.stderr_tail,
                    json.dumps(job.artifacts),
                    job.started_at,
                    job.finished_at,
                    job.id,
                ),
            )
        self._notify(job_id)

    def _index(self, job: JobRecord) -> None:
        self._jobs[job.id] = job
        self._by_key[(job.owner, job.key)] = job

    def _notify(self, job_id: str) -> None:
        with self._lock:
            events = list(self._waiters.get(job_id, ()))
        if self._loop is not None:
            for event in events:
                self._loop.call_soon_threadsafe(event.set)


def _from_row(row: tuple[Any, ...]) -> JobRecord:
    (id_, owner, key, state, exit_code, out, err, artifacts, created, started, finished) = row
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
    )
