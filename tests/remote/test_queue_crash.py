"""Crash safety: a worker killed with SIGKILL at hundreds of random moments loses nothing it
acknowledged, never completes a job twice, and leaves a sound file behind."""

from __future__ import annotations

import random
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from remote_exec.jobs import JobState
from remote_exec.queue import JobQueue

CHILD = Path(__file__).with_name("queue_child.py")
KILLS = 220  # at least 200 must land while the child is alive
SEED = 20240601


def _wait_ready(child: subprocess.Popen[bytes], timeout: float) -> None:
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        assert selector.select(timeout), "the child never became ready"
    assert child.stdout.readline() == b"ready\n", child.stderr.read().decode()


def test_sigkill_at_random_moments(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    db, acked, completed = tmp_path / "q.db", tmp_path / "acked", tmp_path / "completed"
    kills = 0
    for run in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(db), str(acked), str(completed), str(run), str(run)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # Most kills land in the middle of queue work; some during start-up and schema creation.
        if rng.random() < 0.9:
            _wait_ready(child, timeout=30)
        time.sleep(rng.uniform(0, 0.03))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        stderr = child.stderr.read().decode()
        child.stderr.close()
        assert child.returncode == -signal.SIGKILL, stderr
        kills += 1
    assert kills >= 200

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()

    acked_keys = acked.read_text().split()
    completions = [int(line) for line in completed.read_text().split()]
    assert len(acked_keys) > KILLS  # the children did real work between kills
    assert len(completions) == len(set(completions)), "complete() returned True twice for a job"

    with JobQueue(db) as q:
        jobs = {job.key: job for job in q.list(limit=10**6)}
        missing = [key for key in acked_keys if key not in jobs]
        assert not missing, f"acknowledged enqueues lost: {missing[:5]}"
        by_id = {job.id: job for job in jobs.values()}
        for job_id in completions:
            assert by_id[job_id].state == JobState.DONE
        states = {job.state for job in jobs.values()}
        assert states <= {JobState.DONE, JobState.DEAD, JobState.PENDING, JobState.LEASED}
        for job in jobs.values():
            if job.state == JobState.DONE:
                assert job.result == {"key": job.key}

    # Nothing is stranded: an hour later every lease is reclaimable and every job can finish.
    with JobQueue(db, clock=lambda: time.time() + 3600) as q:
        while (job := q.claim("drain")) is not None:
            assert q.complete(job.id, "drain", {"key": job.key})
            assert job.id not in completions
        left = {state: n for state, n in q.counts().items() if n}
        assert set(left) <= {JobState.DONE, JobState.DEAD}, left
