"""Runs in its own process (so its peak RSS is its own): Gantry's indexer, in-process, on a copy
of a source tree. Prints one JSON object on stdout.

    python bench/index_child.py TREE STORE_DIR [--edits 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from pathlib import Path


def _vmhwm_kib(pid: int | str) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


class ChildRss:
    """Samples the peak RSS of this process's descendants (the indexer's worker pool)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        me = os.getpid()
        while not self._stop.wait(interval):
            for pid in _descendants(me):
                self.peak[pid] = max(self.peak.get(pid, 0), _vmhwm_kib(pid))

    def stop(self) -> dict[int, int]:
        self._stop.set()
        self._thread.join(2)
        return self.peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("tree", type=Path)
    parser.add_argument("store_dir", type=Path)
    parser.add_argument("--edits", type=int, default=20)
    args = parser.parse_args()

    started = time.perf_counter()
    from lsp_server.analysis.indexer import Indexer
    from lsp_server.config import Settings
    from lsp_server.store import Store

    import_s = time.perf_counter() - started
    sampler = ChildRss()
    root = args.tree.resolve()
    store = Store.open(args.store_dir / "index.db")
    indexer = Indexer(store, root, Settings())

    t0 = time.perf_counter()
    cold = indexer.index_all()
    cold_wall = time.perf_counter() - t0
    rss_after_cold = _vmhwm_kib("self")

    t0 = time.perf_counter()
    noop = indexer.index_all()
    noop_wall = time.perf_counter() - t0

    # Incremental: one changed file at a time, as a save does (index_paths on that path).
    files = sorted(p for p in root.rglob("*.py") if 2_000 <= p.stat().st_size <= 60_000)
    step = max(1, len(files) // args.edits)
    picked = files[::step][: args.edits]
    times, parsed, lines = [], 0, 0
    for i, path in enumerate(picked):
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"\n\ndef _bench_edit_{i}(value):\n    return value + {i}\n")
        t0 = time.perf_counter()
        stats = indexer.index_paths([path])
        times.append(time.perf_counter() - t0)
        parsed += stats.files_parsed
        lines += stats.lines
    store.close()
    children = sampler.stop()
    print(
        json.dumps(
            {
                "import_s": import_s,
                "cold": {
                    "wall_s": cold_wall,
                    "seconds": cold.seconds,
                    "files_seen": cold.files_seen,
                    "files_parsed": cold.files_parsed,
                    "files_reused": cold.files_reused,
                    "files_skipped": dict(cold.files_skipped),
                    "lines": cold.lines,
                    "symbols": cold.symbols,
                },
                "noop": {"wall_s": noop_wall, "files_unchanged": noop.files_unchanged},
                "incremental": {
                    "edits": len(picked),
                    "parsed": parsed,
                    "lines": lines,
                    "times_s": times,
                    "median_s": statistics.median(times) if times else None,
                },
                "rss_kib": _vmhwm_kib("self"),
                "rss_after_cold_kib": rss_after_cold,
                "worker_rss_kib": max(children.values(), default=0),
                "workers_seen": len(children),
            }
        )
    )


if __name__ == "__main__":
    main()
