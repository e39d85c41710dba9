"""A gateway that runs for weeks, compressed: >= 5,000 trivial jobs from 3 client processes
sharing one queue, through 2 gateways on 127.0.0.1 (local backend, bubblewrap), one of them
SIGKILLed and restarted at random moments. Checks: 0 jobs lost, 0 results recorded twice, every
job done or dead with a reason, and the unkilled gateway's RSS at the end within 20% of its RSS
after the first 500 jobs. Bounded: it stops by itself after --timeout seconds.

The harness is the test suite's (`tests/remote/gateway_soak.py`, `run_soak`); the test runs a
short version (300 jobs, 1 kill). Every client names both gateways: jobs go where the gateways
report free capacity, and those on the killed one are followed there or moved.

    python bench/soak_gateway.py [--jobs 5000] [--kills 5] [--seed N] [--max-finished N]
        [--timeout 1500] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "remote"))

from gateway_soak import run_soak

RSS_GROWTH_LIMIT = 0.20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--slots", type=int, default=4, help="concurrent jobs per gateway")
    parser.add_argument("--workers", type=int, default=4, help="dispatcher workers per client")
    parser.add_argument(
        "--max-finished", type=int, default=1000, help="the gateways' retention by count"
    )
    parser.add_argument("--early", type=int, default=500, help="RSS baseline after N jobs")
    parser.add_argument("--timeout", type=float, default=1500.0)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gantry-soak-") as tmp:
        report = run_soak(
            args.dir or Path(tmp),
            jobs=args.jobs,
            kills=args.kills,
            seed=args.seed,
            slots=args.slots,
            workers=args.workers,
            max_finished=args.max_finished,
            early=args.early,
            timeout_s=args.timeout,
            progress=lambda text: print(text, file=sys.stderr, flush=True),
        )
    print(json.dumps(attrs.asdict(report), indent=2))
    early, end = report.rss_kb["B"]
    print(
        f"jobs {report.jobs}: done {report.done}, dead {report.dead} {report.dead_reasons},"
        f" lost {report.unfinished}, recorded twice {report.recorded_twice},"
        f" wrong results {report.wrong_results}; {report.kills} kills of gateway A"
        f" ({report.lost_at_restart} running jobs reported lost and rerun,"
        f" {report.resumed_at_restart} queued jobs resumed);"
        f" gateway B RSS {early} kB after {report.early} jobs -> {end} kB at the end"
        f" ({report.rss_growth:+.1%}); {report.elapsed_s:.0f} s,"
        f" {report.jobs / report.elapsed_s:.1f} jobs/s"
    )
    flat = report.rss_growth <= RSS_GROWTH_LIMIT
    return 0 if report.ok and flat else 1


if __name__ == "__main__":
    sys.exit(main())
