"""A test-generation run an editor watches and may stop: each exec job is named by its stage
of the funnel as it starts, and once the user cancels, the running job's process group is
killed (the runner's cancel event) and no further job starts."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable

from remote_exec.jobs import ExecResult, ExecSpec

from .jobs import EXPLORER, RunJob

STAGES = ("generate", "collect", "rerun", "coverage", "place")
"""The stages a run shows, in order."""


class Cancelled(Exception):
    """The user stopped the run: its jobs were killed and nothing is delivered."""


def _lines(job: ExecSpec, name: str) -> int:
    content = job.files.get(name)
    if content is None:
        return 0
    return sum(1 for line in base64.b64decode(content).splitlines() if line.strip())


def stage_of(job: ExecSpec) -> tuple[str, str]:
    """The stage a job belongs to, and what it works on, in words."""
    stage, what = _stage(job)
    if job.resources.gpus:
        what += " (needs a GPU: waits for a gateway with one)"
    return stage, what


def _stage(job: ExecSpec) -> tuple[str, str]:
    argv = job.argv
    if "ghostwrite" in argv:
        return "generate", "Hypothesis ghostwriter"
    if "crosshair" in argv:
        return "generate", "CrossHair cover"
    if EXPLORER in argv:
        return "generate", "coverage-guided search"
    if "collect" in argv:  # the funnel driver's commands: collect, rerun, cover
        candidates = sum(1 for a in argv if a.rsplit("/", 1)[-1].startswith("test_gantry_"))
        return "collect", f"{candidates} candidate(s)"
    if "rerun" in argv:
        runs = argv[argv.index("--runs") + 1] if "--runs" in argv[:-1] else "?"
        return "rerun", f"{_lines(job, 'ids.txt')} test(s) x {runs} runs in random order"
    if "cover" in argv:
        return "coverage", f"{_lines(job, 'ids.txt')} test(s) under coverage.py"
    if "mutate" in argv:
        return "coverage", f"{_lines(job, 'ids.txt')} test(s) against mutants of the target"
    return "generate", "candidates"


def watched(run: RunJob, cancel: threading.Event, on_job: Callable[[str, str], None]) -> RunJob:
    """``run`` that tells ``on_job(stage, what)`` before each job and raises Cancelled once
    ``cancel`` is set (``run`` must kill its job on the same event)."""

    def job(spec: ExecSpec) -> ExecResult:
        if cancel.is_set():
            raise Cancelled
        on_job(*stage_of(spec))
        result = run(spec)
        if cancel.is_set() or result.state == "cancelled":
            raise Cancelled
        return result

    return job
