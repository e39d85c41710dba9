"""The remote_exec benchmarks in one process run, as one markdown table.

    python bench/bench_remote.py [--output FILE]

Runs, with their defaults: bench/remote_queue.py (outbox enqueue rate and latency beside
persist-queue), bench/remote_sandbox.py (bubblewrap start-up overhead), bench/remote_gateway.py
(gateway round trip), bench/remote_fallback.py (refused / hung remote -> local fallback), and
bench/remote_crash.py (lost jobs over >= 1,000 kill -9 points) when it exists. A module that
is missing or raises gives one row saying so; the others still run. Targets are shown, never
asserted.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules

from table import markdown, row

MODULES = (
    ("queue enqueue", "remote_queue"),
    ("sandbox", "remote_sandbox"),
    ("gateway", "remote_gateway"),
    ("fallback", "remote_fallback"),
    ("crash", "remote_crash"),
)


def run() -> tuple[list[dict], dict[str, float]]:
    """All rows, and each module's wall time in seconds."""
    rows: list[dict] = []
    walls: dict[str, float] = {}
    for section, name in MODULES:
        started = time.perf_counter()
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            metric = "lost jobs over >= 1,000 kill points" if name == "remote_crash" else "all"
            rows.append(
                row(section, f"bench/{name}.py", metric, "missing", note="not in this tree")
            )
            continue
        try:
            rows += module.run()
        except Exception as exc:  # one broken bench must not hide the others
            traceback.print_exc(file=sys.stderr)
            rows.append(row(section, f"bench/{name}.py", "run()", "error", note=repr(exc)[:200]))
        walls[name] = time.perf_counter() - started
    return rows, walls


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{now}; {os.cpu_count()} CPUs ({cpu or platform.machine()}); "
        f"Python {platform.python_version()}; Linux {platform.release()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="also write the table there")
    args = parser.parse_args()
    started = time.perf_counter()
    rows, walls = run()
    text = "\n".join(
        [
            f"Machine: {machine()}",
            "",
            markdown(rows),
            "",
            "Wall time: "
            + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in walls.items())
            + f"; total {time.perf_counter() - started:.0f} s",
        ]
    )
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
