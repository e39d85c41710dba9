"""Run one ExecSpec in the local sandbox: the gateway's `local` backend and the dispatcher's
local fallback both come through here."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from .bundle import BundleError, MiB, collect_artifacts, normalise, write_bundle
from .jobs import ExecResult, ExecSpec
from .sandbox import DEFAULT_DISK_MB, Limits, RunOutcome, Sandbox

MAX_ARTIFACT_BYTES = 50 * MiB


def _state(out: RunOutcome) -> str:
    if out.cancelled:
        return "cancelled"
    if out.timed_out:
        return "timed_out"
    return "succeeded" if out.exit_code == 0 else "failed"


def _remove(path: Path) -> None:
    # The job may have left directories without write permission; make them removable.
    def retry(func: Callable[[str], object], name: str, _exc: object) -> None:
        os.chmod(os.path.dirname(name), stat.S_IRWXU)
        func(name)

    shutil.rmtree(path, onerror=retry)


def run_spec(
    spec: ExecSpec,
    sandbox: Sandbox,
    work_root: Path,
    *,
    disk_mb: int = DEFAULT_DISK_MB,
    on_output: Callable[[str, bytes], None] | None = None,
    cancel: threading.Event | None = None,
    local_binds: bool = False,
) -> ExecResult:
    """Run ``spec`` in a fresh private directory under ``work_root``, removed afterwards; the job
    may write ``disk_mb`` there and as much in its /tmp.

    A refused bundle raises BundleError (the request is at fault, not the job); artifacts over
    the size limit turn the result into ``failed`` with the reason in stderr_tail.
    Raises SandboxUnavailable when the sandbox cannot run and unsandboxed is not allowed.
    ``local_binds``: bind the spec's ``local_ro`` folders (only the client's own runs: a gateway
    must never bind a folder a client names).
    """
    for path in spec.artifacts:
        normalise(path)  # refuse a bad artifact path before running anything
    work_root.mkdir(parents=True, exist_ok=True)
    job_dir = Path(tempfile.mkdtemp(prefix="job-", dir=work_root))
    try:
        write_bundle(spec.files, job_dir)
        res = spec.resources
        limits = Limits(
            timeout_s=spec.timeout_s, memory_mb=res.memory_mb, cpus=res.cpus, disk_mb=disk_mb
        )
        binds = [Path(p) for p in spec.local_ro if local_binds and os.path.isdir(p)]
        out = sandbox.run(
            spec.argv,
            job_dir,
            env=spec.env,
            limits=limits,
            ro_binds=binds,
            on_output=on_output,
            cancel=cancel,
        )
        state, stderr = _state(out), out.stderr_tail
        try:
            artifacts = collect_artifacts(job_dir, spec.artifacts, max_bytes=MAX_ARTIFACT_BYTES)
        except BundleError as e:
            artifacts = {}
            stderr += f"\n[gantry] artifacts not collected: {e}\n"
            state = "failed" if state == "succeeded" else state
        return ExecResult(
            state=state,
            exit_code=out.exit_code,
            stdout_tail=out.stdout_tail,
            stderr_tail=stderr,
            duration_s=out.duration_s,
            artifacts=artifacts,
            where="local",
        )
    finally:
        _remove(job_dir)
