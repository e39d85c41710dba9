"""Enqueue throughput and latency of the durable outbox, beside persist-queue on the same disk.

Each tool gets a fresh file in one temp directory and 3,000 put()s of the same ~1 KB payload (an
inference request's size), one at a time, each durable when it returns:

* Gantry's `JobQueue.enqueue` with synchronous=FULL (what the outbox promises), and NORMAL beside
  it for reference (safe against process crashes, may lose the last commits on power loss);
* persist-queue's `SQLiteAckQueue` (file-backed, `auto_commit=True` so every put() commits, one
  thread so `multithreading=False`) with its connection set to the same synchronous level.
  SQLiteAckQueue also uses WAL; it has no idempotency key, priority or leases.

Also measured: Gantry's claim + complete round trip beside SQLiteAckQueue's get + ack. Then
`--rounds` rounds at FULL on fresh files give the ratios the targets are about (issue 13: enqueue
at least persist-queue's, claim+complete ahead of its get+ack). This disk is shared and noisy
(other processes' fsyncs come and go over seconds), so within a round the two tools take turns
every `--block` puts (and then takes), the tool going first alternating, and each tool's time is
the sum of its blocks: the ratio of a round compares the two under the same disk.

    python bench/remote_queue.py [--jobs 3000] [--rounds 5] [--block 100] [--dir DIR]
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


def _gantry(directory: Path, jobs: int, synchronous: str) -> tuple[float, list[float], float]:
    """(enqueues/s, their latencies in ms, claim+complete round trips/s) on a fresh file."""
    with JobQueue(directory / f"gantry-{synchronous}.db", synchronous=synchronous) as q:
        rate, latencies = _timed(lambda i: q.enqueue(f"job-{i}", JobKind.INFERENCE, PAYLOAD), jobs)
        start = time.perf_counter()
        while (job := q.claim("bench")) is not None:
            q.complete(job.id, "bench", {"ok": True})
        return rate, latencies, jobs / (time.perf_counter() - start)


def _persistqueue(directory: Path, jobs: int, synchronous: str) -> tuple[float, list[float], float]:
    """The same for SQLiteAckQueue: put(), then its consumer's round trip, get() (marks the item
    unacked) and ack() (marks it done); auto_commit makes each its own commit."""
    from persistqueue import SQLiteAckQueue

    q = SQLiteAckQueue(str(directory / f"persistqueue-{synchronous}"), auto_commit=True)
    # Its connection is private; set the same durability as Gantry's for a fair comparison.
    q._putter.execute(f"PRAGMA synchronous = {synchronous}")
    try:
        rate, latencies = _timed(lambda i: q.put(PAYLOAD), jobs)
        start = time.perf_counter()
        for _ in range(jobs):
            q.ack(q.get(block=False))
        return rate, latencies, jobs / (time.perf_counter() - start)
    finally:
        q.close()


def _claim_row(tool: str, rate: float) -> dict:
    return {
        "section": "queue claim+complete",
        "tool": tool,
        "metric": "jobs/s",
        "value": round(rate),
        "target": "",
        "met": None,
    }


def _ratio_row(metric: str, ratios: list[float]) -> dict:
    median = statistics.median(ratios)
    return {
        "section": "queue vs persist-queue (FULL)",
        "tool": "gantry JobQueue / persist-queue SQLiteAckQueue",
        "metric": metric,
        "value": f"{median:.2f}x",
        "target": ">= 1.00x",
        "met": median >= 1.0,
        "note": "median of rounds, the tools taking turns by blocks: "
        + ", ".join(f"{r:.2f}" for r in ratios),
    }


def _round(directory: Path, jobs: int, block: int) -> tuple[float, float]:
    """(enqueue, take) throughput ratios, Gantry's over persist-queue's, on fresh files at FULL,
    the two taking turns every `block` operations with the first of each pair alternating."""
    from persistqueue import SQLiteAckQueue

    ours = JobQueue(directory / "gantry.db")
    theirs = SQLiteAckQueue(str(directory / "persistqueue"), auto_commit=True)
    theirs._putter.execute("PRAGMA synchronous = FULL")

    def take(_: int) -> None:
        job = ours.claim("bench")
        assert job is not None and ours.complete(job.id, "bench", {"ok": True})

    phases = (
        (
            lambda i: ours.enqueue(f"job-{i}", JobKind.INFERENCE, PAYLOAD),
            lambda i: theirs.put(PAYLOAD),
        ),
        (take, lambda _: theirs.ack(theirs.get(block=False))),
    )
    ratios = []
    try:
        for gantry, persistqueue in phases:
            spent = {gantry: 0.0, persistqueue: 0.0}
            for n, start in enumerate(range(0, jobs, block)):
                for op in (gantry, persistqueue) if n % 2 == 0 else (persistqueue, gantry):
                    t = time.perf_counter()
                    for i in range(start, min(start + block, jobs)):
                        op(i)
                    spent[op] += time.perf_counter() - t
            ratios.append(spent[persistqueue] / spent[gantry])
    finally:
        ours.close()
        theirs.close()
    return ratios[0], ratios[1]


def run(
    jobs: int = 3000, directory: Path | None = None, rounds: int = 5, block: int = 100
) -> list[dict]:
    """The first round's figures in full, at both durability levels, each tool on its own;
    then `rounds` rounds at FULL, each on fresh files with the tools taking turns by blocks
    (see the module's docstring), summarised as median ratios."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="gantry-bench-queue-", dir=directory) as tmp:
        for synchronous in ("FULL", "NORMAL"):
            first = Path(tmp) / f"first-{synchronous}"
            first.mkdir()
            for name, measure, targets in (
                (f"gantry JobQueue ({synchronous})", _gantry, True),
                (f"persist-queue SQLiteAckQueue ({synchronous})", _persistqueue, False),
            ):
                rate, latencies, claims = measure(first, jobs, synchronous)
                rows += _rows(name, rate, latencies, targets=targets)
                if synchronous == "FULL":
                    rows.append(_claim_row(name, claims))
        enqueue, claim = [], []
        for round_ in range(rounds):
            here = Path(tmp) / f"round-{round_}"
            here.mkdir()
            ratios = _round(here, jobs, block)
            enqueue.append(ratios[0])
            claim.append(ratios[1])
        rows += [_ratio_row("enqueues/s", enqueue), _ratio_row("claim+complete vs get+ack", claim)]
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--dir", type=Path, help="where the queue files go (default: temp dir)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds for the ratios")
    parser.add_argument("--block", type=int, default=100, help="operations per turn in a round")
    args = parser.parse_args()
    print(markdown(run(args.jobs, args.dir, args.rounds, args.block)))
