"""Child processes for the queue tests: a claimer for the concurrency test, and the worker the
crash test kills. Imports nothing but the queue, so a child starts quickly.

As a script: `queue_child.py DB ACKED COMPLETED RUN SEED` enqueues, claims and finishes jobs in a
loop until killed. A key is appended to ACKED only after enqueue returned, a job id to COMPLETED
only after complete() returned True: each line is a promise the queue must have kept.
"""

from __future__ import annotations

import itertools
import os
import random
import sys
from pathlib import Path
from typing import Any

from remote_exec.queue import JobQueue, new_owner


def claim_all(path: str, start: Any, results: Any) -> None:
    """Claim and complete until the queue is empty; report the ids this process claimed."""
    mine = []
    with JobQueue(Path(path)) as q:
        owner = new_owner()
        start.wait()
        while (job := q.claim(owner, lease_s=600)) is not None:
            assert q.complete(job.id, owner, {"by": owner})
            mine.append(job.id)
    results.put(mine)


def _append(path: str, line: str) -> None:
    # One write() of one short line with O_APPEND: a kill leaves it whole or absent.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def work(db: str, acked: str, completed: str, run: int, seed: int) -> None:
    rng = random.Random(seed)
    q = JobQueue(Path(db))
    owner = new_owner("crash")
    print("ready", flush=True)
    for i in itertools.count():
        key = f"r{run}-{i}"
        q.enqueue(key, "exec", {"key": key}, priority=rng.choice([0, 10]), max_attempts=4)
        _append(acked, key)
        # A short lease: the next child reclaims whatever this one held when it was killed.
        job = q.claim(owner, lease_s=0.05)
        if job is None:
            continue
        roll = rng.random()
        if roll < 0.1:
            q.fail(job.id, owner, "flaky", retry_in=0)
        elif roll < 0.15:
            q.release(job.id, owner, not_before=0, reason="remote busy")
        else:
            q.heartbeat(job.id, owner, lease_s=0.05)
            if q.complete(job.id, owner, {"key": job.payload["key"]}):
                _append(completed, str(job.id))


if __name__ == "__main__":
    db, acked, completed, run, seed = sys.argv[1:]
    work(db, acked, completed, int(run), int(seed))
