"""Run each job as a Ray task (`num_gpus`, `num_cpus`, `memory` from its resources).

Ray does the scheduling and scaling; this module only submits, relays output and cancels. The
task is a streaming generator: it yields a start marker, output chunks as they come, then the
result, so logs stream from any node. Workers need `gantry-lsp` (and bubblewrap) installed.

A GPU job may also need one unit per GPU of a custom resource (`gpu_resource`, for example
`h100`), so a gateway in front of a mixed cluster uses only the nodes that declare it. A task
whose worker or node dies is retried by Ray (`max_retries`): the result is the last attempt's,
while the streamed log may begin with an earlier attempt's output (Ray skips re-yielded chunks).
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
        # Retried when its worker or node dies, never for the job's own failure (a result).
        self._task = ray.remote(num_returns="streaming", max_retries=max_retries)(_run_on_worker)
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
            with self._lock:
                if job_id in self._cancelled:
                    raise _Cancelled
                gen = self._task.options(**self.resources_for(spec)).remote(spec, self._disk_mb)
                self._refs[job_id] = gen
            for ref in gen:
                kind, value = ray.get(ref)
                if kind == "started":
                    events.started(job_id)
                elif kind == "output":
                    events.output(job_id, value)
                else:
                    result = value
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
        events.finished(job_id, result or ExecResult(state="failed", exit_code=None))


class _Cancelled(Exception):
    pass
