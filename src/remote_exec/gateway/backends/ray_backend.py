"""Run each job as a Ray task (`num_gpus`, `num_cpus`, `memory` from its resources).

Ray does the scheduling and scaling; this module only submits, relays output and cancels. The
task is a streaming generator: it yields a start marker, output chunks as they come, then the
result, so logs stream from any node. Workers need `gantry-lsp` (and bubblewrap) installed.

A GPU job may also need one unit per GPU of a custom resource (`gpu_resource`, for example
`h100`), so a gateway in front of a mixed cluster uses only the nodes that declare it.

A job whose worker or node dies is run again, up to `max_retries` times, as a new task, not by
Ray's own task retries: Ray re-runs a streaming generator but drops whatever the new attempt
yields at positions the old one already delivered, and output chunks split differently each
run, so the retry's result could land on a dropped position (seen here: a job that ran twice
ended with no result). The log keeps every attempt's output, with a line between them; the
result is the last attempt's.
"""

from __future__ import annotations

import logging
import queue
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from remote_exec.gateway.backends import Capacity, JobEvents
from remote_exec.jobs import ExecResult, ExecSpec
from remote_exec.sandbox import DEFAULT_DISK_MB

log = logging.getLogger(__name__)

try:
    import ray
except ImportError:  # the optional extra
    ray = None


def _run_on_worker(spec: ExecSpec, disk_mb: int) -> Iterator[tuple[str, Any]]:
    """Body of the Ray task: run_spec in a thread, relaying its output; ray.cancel kills it."""
    from remote_exec.local_runner import run_spec
    from remote_exec.sandbox import Sandbox

    chunks: queue.Queue[bytes | None] = queue.Queue()
    cancel = threading.Event()
    results: list[ExecResult] = []

    def work() -> None:
        try:
            # run_spec makes (and removes) a private job directory there; a sticky /tmp keeps
            # other users from renaming it, as they could in a shared directory below /tmp.
            result = run_spec(
                spec,
                Sandbox(),
                Path(tempfile.gettempdir()),
                disk_mb=disk_mb,
                on_output=lambda _s, d: chunks.put(d),
                cancel=cancel,
            )
            results.append(result)
        except Exception as exc:
            results.append(ExecResult(state="failed", exit_code=None, stderr_tail=f"worker: {exc}"))
        finally:
            chunks.put(None)

    yield ("started", None)
    runner = threading.Thread(target=work, name="gantry-job", daemon=True)
    runner.start()
    try:
        while True:
            try:
                # A timeout, not a blocking get: Ray's interrupt is seen between bytecodes only.
                chunk = chunks.get(timeout=0.1)
            except queue.Empty:
                continue
            if chunk is None:
                break
            yield ("output", chunk)
    except BaseException:
        # ray.cancel interrupts this thread: let run_spec kill the job's process group.
        cancel.set()
        runner.join()
        raise
    runner.join()
    yield ("result", results[0])


class RayBackend:
    name = "ray"

    def __init__(
        self,
        max_concurrency: int,
        address: str | None = None,
        *,
        disk_mb: int = DEFAULT_DISK_MB,
        max_retries: int = 3,
        gpu_resource: str | None = None,
    ) -> None:
        if ray is None:
            raise ImportError("the ray backend needs Ray: pip install 'gantry-lsp[ray]'")
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self._task = ray.remote(num_returns="streaming", max_retries=0)(_run_on_worker)
        self._max_retries = max_retries
        self._gpu_resource = gpu_resource
        self._max = max_concurrency
        self._disk_mb = disk_mb
        self._pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="gateway-ray")
        self._refs: dict[str, Any] = {}
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()

    def capacity(self) -> Capacity:
        return Capacity(
            max_concurrency=self._max,
            gpus=self._usable_gpus(),
            enforcement={
                "memory": "rlimit",
                "cpus": "rlimit",
                "disk": "tmpfs",
                "why": "a Ray worker's sandbox does not move the worker into a cgroup",
            },
        )

    def _usable_gpus(self) -> int:
        total = ray.cluster_resources()
        gpus = total.get("GPU", 0)
        if self._gpu_resource is not None:
            gpus = min(gpus, total.get(self._gpu_resource, 0))
        return int(gpus)

    def resources_for(self, spec: ExecSpec) -> dict[str, Any]:
        """The Ray task options for a job's resources."""
        res = spec.resources
        options: dict[str, Any] = {
            "num_cpus": res.cpus,
            "num_gpus": res.gpus,
            "memory": res.memory_mb * 1024 * 1024,
        }
        if self._gpu_resource is not None and res.gpus:
            options["resources"] = {self._gpu_resource: res.gpus}
        return options

    def check(self, spec: ExecSpec) -> str | None:
        return None  # the cluster may scale up to fit; Ray queues the task until then

    def submit(self, job_id: str, spec: ExecSpec, events: JobEvents) -> None:
        self._pool.submit(self._run, job_id, spec, events)

    def cancel(self, job_id: str) -> None:
        with self._lock:
            self._cancelled.add(job_id)
            ref = self._refs.get(job_id)
        if ref is not None:
            ray.cancel(ref)

    def close(self) -> None:
        with self._lock:
            ids = list(self._refs)
        for job_id in ids:
            self.cancel(job_id)
        self._pool.shutdown(wait=True)

    def _run(self, job_id: str, spec: ExecSpec, events: JobEvents) -> None:
        result: ExecResult | None = None
        try:
            for attempt in range(1, self._max_retries + 2):
                try:
                    result = self._attempt(job_id, spec, events, first=attempt == 1)
                    break
                except _WORKER_LOST as exc:  # the cluster's failure, not the job's: run it again
                    if attempt > self._max_retries or job_id in self._cancelled:
                        raise
                    log.warning("job %s lost its Ray worker (%s); running it again", job_id, exc)
                    note = f"\n[gantry] attempt {attempt} lost its Ray worker or node"
                    events.output(
                        job_id, f"{note} ({type(exc).__name__}); running it again\n".encode()
                    )
        except (_Cancelled, ray.exceptions.TaskCancelledError):
            result = ExecResult(state="cancelled", exit_code=None)
        except Exception as exc:
            log.warning("ray task for job %s failed: %s", job_id, exc)
            cancelled = job_id in self._cancelled
            state = "cancelled" if cancelled else "failed"
            result = ExecResult(state=state, exit_code=None, stderr_tail=f"ray: {exc}")
        finally:
            with self._lock:
                self._refs.pop(job_id, None)
                self._cancelled.discard(job_id)
        if result is None:
            result = ExecResult(state="failed", exit_code=None, stderr_tail="ray: no result")
        events.finished(job_id, result)

    def _attempt(
        self, job_id: str, spec: ExecSpec, events: JobEvents, *, first: bool
    ) -> ExecResult | None:
        """One Ray task for the job, followed to its end; its result (None: it sent none)."""
        with self._lock:
            if job_id in self._cancelled:
                raise _Cancelled
            gen = self._task.options(**self.resources_for(spec)).remote(spec, self._disk_mb)
            self._refs[job_id] = gen
        result = None
        for ref in gen:
            kind, value = ray.get(ref)
            if kind == "started":
                if first:
                    events.started(job_id)
            elif kind == "output":
                events.output(job_id, value)
            else:
                result = value
        return result


class _Cancelled(Exception):
    pass


_WORKER_LOST = (
    (
        ray.exceptions.WorkerCrashedError,
        ray.exceptions.NodeDiedError,
        ray.exceptions.ObjectLostError,
        ray.exceptions.OutOfMemoryError,  # Ray's memory monitor killed the worker
    )
    if ray is not None
    else ()
)
