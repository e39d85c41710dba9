"""Run jobs in the sandbox on this machine, `max_concurrency` at a time, none bigger than it."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs

from remote_exec.bundle import MiB
from remote_exec.gateway.backends import Capacity, JobEvents
from remote_exec.jobs import ExecResult, ExecSpec
from remote_exec.local_runner import run_spec
from remote_exec.sandbox import DEFAULT_DISK_MB, Sandbox

log = logging.getLogger(__name__)


def visible_gpus() -> list[str]:
    """The GPU ids this gateway may hand out: CUDA_VISIBLE_DEVICES when set, else nvidia-smi's."""
    if (env := os.environ.get("CUDA_VISIBLE_DEVICES")) is not None:
        return [d.strip() for d in env.split(",") if d.strip()]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


class _GpuPool:
    """Whole GPUs handed to one job at a time, so concurrent jobs never share a device."""

    def __init__(self, devices: list[str]) -> None:
        self.size = len(devices)
        self._free = list(devices)
        self._cond = threading.Condition()

    def take(self, n: int, cancel: threading.Event) -> list[str] | None:
        with self._cond:
            while len(self._free) < n:
                if cancel.is_set():
                    return None
                self._cond.wait(0.5)
            taken, self._free = self._free[:n], self._free[n:]
            return taken

    def give(self, devices: list[str]) -> None:
        with self._cond:
            self._free += devices
            self._cond.notify_all()


class LocalBackend:
    name = "local"

    def __init__(
        self,
        sandbox: Sandbox,
        work_root: Path,
        max_concurrency: int,
        gpus: list[str] | None = None,
        *,
        disk_mb: int = DEFAULT_DISK_MB,
    ) -> None:
        self._sandbox = sandbox
        self._work_root = work_root
        self._max = max_concurrency
        self._disk_mb = disk_mb
        self._gpus = _GpuPool(visible_gpus() if gpus is None else gpus)
        self._cpus = len(os.sched_getaffinity(0))
        self._memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // MiB
        self._pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="gateway-job")
        self._cancels: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        # Jobs' files are private to the gateway's user (and a job's own pool uid).
        work_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        work_root.chmod(0o700)

    def capacity(self) -> Capacity:
        return Capacity(
            max_concurrency=self._max,
            gpus=self._gpus.size,
            cpus=self._cpus,
            memory_mb=self._memory_mb,
            enforcement=self._sandbox.enforcement(),
        )

    def check(self, spec: ExecSpec) -> str | None:
        res = spec.resources
        if res.gpus > self._gpus.size:
            return f"resources.gpus: this gateway has {self._gpus.size} GPU(s)"
        if res.cpus > self._cpus:
            return f"resources.cpus: this gateway's host has {self._cpus} CPU(s) ({res.cpus} asked)"
        if res.memory_mb > self._memory_mb:
            return (
                f"resources.memory_mb: this gateway's host has {self._memory_mb} MB of memory "
                f"({res.memory_mb} asked)"
            )
        return None

    def submit(self, job_id: str, spec: ExecSpec, events: JobEvents) -> None:
        with self._lock:
            self._cancels[job_id] = threading.Event()
        self._pool.submit(self._run, job_id, spec, events)

    def cancel(self, job_id: str) -> None:
        with self._lock:
            if (event := self._cancels.get(job_id)) is not None:
                event.set()

    def close(self) -> None:
        with self._lock:
            for event in self._cancels.values():
                event.set()
        self._pool.shutdown(wait=True, cancel_futures=False)

    def _run(self, job_id: str, spec: ExecSpec, events: JobEvents) -> None:
        cancel = self._cancels[job_id]
        devices: list[str] | None = None
        try:
            if cancel.is_set() or (devices := self._gpus.take(spec.resources.gpus, cancel)) is None:
                result = ExecResult(state="cancelled", exit_code=None)
            else:
                events.started(job_id)
                if self._gpus.size:
                    # A CPU job sees no GPU; a GPU job sees only the ones it was given.
                    env = {**spec.env, "CUDA_VISIBLE_DEVICES": ",".join(devices)}
                    spec = attrs.evolve(spec, env=env)
                result = run_spec(
                    spec,
                    self._sandbox,
                    self._work_root,
                    disk_mb=self._disk_mb,
                    on_output=lambda _stream, data: events.output(job_id, data),
                    cancel=cancel,
                )
        except Exception as exc:
            log.exception("job %s failed in the backend", job_id)
            result = ExecResult(state="failed", exit_code=None, stderr_tail=f"gateway: {exc}")
        finally:
            if devices:
                self._gpus.give(devices)
            with self._lock:
                self._cancels.pop(job_id, None)
        events.finished(job_id, attrs.evolve(result, where="local"))
