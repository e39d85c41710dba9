"""`gantry serve` with test-only collaborators, for end-to-end tests over stdio.

--gated-engine DIR   a second review engine ("gated") that reviews version N of a document only
                     once the file DIR/<name>-<N> exists (bounded): a deliberately slow engine
                     whose pace the test controls.
--block-pools        every background and remote worker is held busy from the start, as a long
                     index and model waits would hold them.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from lsp_server.review.findings import Finding, Provenance
from lsp_server.review.local import LocalReview
from lsp_server.server import create_server, run

_GATE_WAIT_S = 60.0


class GatedEngine:
    source = "gated"

    def __init__(self, gates: Path) -> None:
        self.gates = gates

    def review(self, snapshot, root) -> LocalReview:
        gate = self.gates / f"{Path(snapshot.path).name}-{snapshot.version}"
        deadline = time.monotonic() + _GATE_WAIT_S
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        finding = Finding(
            rule="GATED1",
            message=f"gated finding on version {snapshot.version}",
            level="warning",
            start=(0, 0),
            end=(0, 1),
            provenance=Provenance(engine="gated"),
            fingerprint=f"gated-{snapshot.version}",
        )
        return LocalReview(findings=(finding,))

    def forget(self, uri: str) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gated-engine", type=Path)
    parser.add_argument("--block-pools", action="store_true")
    args = parser.parse_args()
    server = create_server(engines=[GatedEngine(args.gated_engine)] if args.gated_engine else [])
    release = threading.Event()
    if args.block_pools:
        executors = server.session.executors
        for pool in (executors.background, executors.remote):
            for _ in range(pool.workers):
                pool.submit(release.wait, 120)
    try:
        return run(server)
    finally:
        release.set()  # let the held workers go, or the interpreter waits for them at exit


if __name__ == "__main__":
    raise SystemExit(main())
