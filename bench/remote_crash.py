"""Crash safety of the dispatcher at >= 1,000 kill -9 points: lost jobs, double completions and
duplicate remote submissions (targets: 0 each), and how long the run takes.

The harness is the crash test's (`tests/remote/dispatch_child.py`, `run_crash`): a real gateway
(local backend, bubblewrap) on 127.0.0.1 in its own process, and a child process that owns a
Dispatcher (lease 1 s, 2 workers, local fallback) over one queue file. The child is killed with
SIGKILL at seeded-random moments: during start-up, in an enqueue burst, while a job runs in the
local sandbox (the gateway URL then points at a closed port), right after the gateway accepted a
job and before the queue recorded it. Then a last child drains the queue and the promises are
checked. Here the jobs are shorter than in the test (they sleep up to 0.1 s), so each kill point
costs little more than a child's start-up.

    python bench/remote_crash.py [--kill-points 1000] [--seed N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from pathlib import Path

from table import markdown, row

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "remote"))

from dispatch_child import CrashReport, run_crash

SECTION = "crash"
TOOL = "gantry dispatcher (kill -9)"


_row = functools.partial(row, SECTION, TOOL)


def rows(report: CrashReport, kill_points: int) -> list[dict]:
    lost = len(report.lost) + len(report.unexplained_dead) + len(report.wrong_results)
    return [
        _row("kill points", report.kill_points, f">= {kill_points:,}", report.kill_points >= kill_points),
        _row("kills between remote submit and record", report.kills_remote_in_flight),
        _row("kills during a local run", report.kills_local_in_flight),
        _row("acknowledged jobs", report.acked),
        _row("lost jobs", lost, "0", lost == 0),
        _row("double completions", len(report.double_completions), "0", not report.double_completions),
        _row(
            "duplicate remote submissions",
            len(report.duplicate_remote) + len(report.duplicate_remote_finished),
            "0",
            not (report.duplicate_remote or report.duplicate_remote_finished),
        ),
        _row("jobs done", report.done),
        _row("jobs dead (attempts used up by kills)", len(report.dead)),
        _row("idempotent remote resubmissions", report.remote_resubmissions),
        _row("jobs run again after a kill", report.rerun_after_kill),
        _row("queue integrity_check", report.integrity, "ok", report.integrity == "ok"),
        _row("run time s", round(report.elapsed_s, 1)),
    ]  # fmt: skip


def run(
    kill_points: int = 1000, *, seed: int = 1000003, directory: Path | None = None
) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="gantry-bench-crash-", dir=directory) as tmp:
        report = run_crash(
            Path(tmp),
            kill_points=kill_points,
            seed=seed,
            job_sleep_s=0.1,
            drain_timeout_s=300.0,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    if violations := report.violations():
        print("VIOLATIONS:", *violations, sep="\n  ", file=sys.stderr)
    return rows(report, kill_points)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kill-points", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1000003)
    parser.add_argument("--dir", type=Path, help="where the run's files go (default: temp dir)")
    args = parser.parse_args()
    print(markdown(run(args.kill_points, seed=args.seed, directory=args.dir)))
