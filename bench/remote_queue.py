"""Enqueue throughput and latency of the durable outbox, beside persist-queue on the same disk.

Each tool gets a fresh file in one temp directory and 3,000 put()s of the same ~1 KB payload (an
inference request's size), one at a time, each durable when it returns:

* Gantry's `JobQueue.enqueue` with synchronous=FULL (what the outbox promises), and NORMAL beside
  it for reference (safe against process crashes, may lose the last commits on power loss);
* persist-queue's `SQLiteAckQueue` (file-backed, `auto_commit=True` so every put() commits, one
  thread so `multithreading=False`) with its connection set to the same synchronous level.
  SQLiteAckQueue also uses WAL; it has no idempotency key, priority or leases.

Also measured, without a target: Gantry's claim + complete round trip.

    python bench/remote_queue.py [--jobs 3000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from table import markdown

from remote_exec.jobs import JobKind
from remote_exec.queue import JobQueue

SECTION = "queue enqueue"
TARGET_RATE = 2000.0
TARGET_P99_MS = 5.0
PAYLOAD: dict[str, Any] = {
    "model": "reviewer",
    "max_tokens": 1024,
    "messages": [{"role": "user", "content": "def f(x):\n    return x + 1\n" * 30}],
}


def _timed(put: Callable[[int], object], jobs: int) -> tuple[float, list[float]]:
    """(puts per second, per-put latencies in ms) for `jobs` sequential puts."""
    latencies = []
    start = time.perf_counter()
    for i in range(jobs):
        t = time.perf_counter()
        put(i)
        latencies.append((time.perf_counter() - t) * 1000)
    return jobs / (time.perf_counter() - start), latencies


def _rows(tool: str, rate: float, latencies: list[float], *, targets: bool) -> list[dict]:
    cuts = statistics.quantiles(latencies, n=100)
    p50, p99 = cuts[49], cuts[98]
    return [
        {
            "section": SECTION,
            "tool": tool,
            "metric": "enqueues/s",
            "value": round(rate),
            "target": f">= {TARGET_RATE:,.0f}" if targets else "",
            "met": rate >= TARGET_RATE if targets else None,
        },
        {
            "section": SECTION,
            "tool": tool,
            "metric": "p50 ms",
            "value": round(p50, 3),
            "target": "",
            "met": None,
        },
        {
            "section": SECTION,
            "tool": tool,
            "metric": "p99 ms",
            "value": round(p99, 3),
            "target": f"<= {TARGET_P99_MS:g}" if targets else "",
            "met": p99 <= TARGET_P99_MS if targets else None,
        },
    ]


def _gantry(directory: Path, jobs: int, synchronous: str) -> list[dict]:
    with JobQueue(directory / f"gantry-{synchronous}.db", synchronous=synchronous) as q:
        rate, latencies = _timed(lambda i: q.enqueue(f"job-{i}", JobKind.INFERENCE, PAYLOAD), jobs)
        rows = _rows(f"gantry JobQueue ({synchronous})", rate, latencies, targets=True)
        if synchronous == "FULL":
            start = time.perf_counter()
            while (job := q.claim("bench")) is not None:
                q.complete(job.id, "bench", {"ok": True})
            rows.append(
                _claim_row(
                    f"gantry JobQueue ({synchronous})", jobs / (time.perf_counter() - start), None
                )
            )
    return rows


def _persistqueue(directory: Path, jobs: int, synchronous: str) -> list[dict]:
    from persistqueue import SQLiteAckQueue

    q = SQLiteAckQueue(str(directory / f"persistqueue-{synchronous}"), auto_commit=True)
    # Its connection is private; set the same durability as Gantry's for a fair comparison.
    q._putter.execute(f"PRAGMA synchronous = {synchronous}")
    tool = f"persist-queue SQLiteAckQueue ({synchronous})"
    try:
        rate, latencies = _timed(lambda i: q.put(PAYLOAD), jobs)
        rows = _rows(tool, rate, latencies, targets=False)
        if synchronous == "FULL":
            # Its consumer's round trip, beside Gantry's claim + complete: get() marks the
            # item unacked, ack() marks it done (auto_commit: each is its own commit).
            start = time.perf_counter()
            for _ in range(jobs):
                q.ack(q.get(block=False))
            rows.append(_claim_row(tool, jobs / (time.perf_counter() - start), None))
    finally:
        q.close()
    return rows


def _claim_row(tool: str, rate: float, versus: float | None) -> dict:
    return {
        "section": "queue claim+complete",
        "tool": tool,
        "metric": "jobs/s",
        "value": round(rate),
        "target": ">= persist-queue's get+ack" if versus is not None else "",
        "met": rate >= versus if versus is not None else None,
    }


def run(jobs: int = 3000, directory: Path | None = None) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="gantry-bench-queue-", dir=directory) as tmp:
        rows = []
        for synchronous in ("FULL", "NORMAL"):
            rows += _gantry(Path(tmp), jobs, synchronous)
            rows += _persistqueue(Path(tmp), jobs, synchronous)
        return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--dir", type=Path, help="where the queue files go (default: temp dir)")
    args = parser.parse_args()
    print(markdown(run(args.jobs, args.dir)))
