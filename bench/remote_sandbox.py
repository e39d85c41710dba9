"""Sandbox start-up overhead: the local runner's bubblewrap sandbox against a bare subprocess.

    python bench/remote_sandbox.py [--runs 20]

Medians of --runs runs of `true` and `python -c pass`, each both ways; the overhead is the
difference of medians. Targets are shown, never asserted.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

from table import markdown, median_ms, row

from remote_exec.sandbox import Sandbox

TARGET_OVERHEAD_MS = 250


_row = partial(row, "sandbox")


def run(runs: int = 20) -> list[dict]:
    sandbox = Sandbox()
    target = f"<= {TARGET_OVERHEAD_MS} ms"
    problem = sandbox.check()
    if problem is not None:
        return [
            {**_row("bwrap sandbox", "start-up overhead", "n/a", target, False), "note": problem}
        ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="gantry-bench-") as tmp:
        job = Path(tmp)
        for label, argv in (("true", ["true"]), ("python -c pass", [sys.executable, "-c", "pass"])):
            bare = median_ms(partial(subprocess.run, argv, check=True), runs)
            boxed = median_ms(partial(sandbox.run, argv, job), runs)
            overhead = boxed - bare
            rows += [
                _row("bare subprocess", f"{label} (ms, median)", round(bare, 1)),
                _row("bwrap sandbox", f"{label} (ms, median)", round(boxed, 1)),
                _row(
                    "bwrap sandbox",
                    f"{label} overhead (ms)",
                    round(overhead, 1),
                    target,
                    overhead <= TARGET_OVERHEAD_MS,
                ),
            ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    rows = run(parser.parse_args().runs)
    print(markdown(rows))


if __name__ == "__main__":
    main()
