"""Where a job runs, per DESIGN.md: inference walks the endpoint chain (a circuit breaker per
endpoint) and otherwise waits queued; exec jobs go to the gateway, CPU ones fall back to the local
sandbox when the gateway is down or busy, GPU ones wait for it. Every outcome is written to the
queue, fenced on the job's lease owner.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import cattrs

from remote_exec import execution, inference
from remote_exec.bundle import BundleError
from remote_exec.health import RemoteHealth
from remote_exec.inference.cassette import post_for
from remote_exec.jobs import ExecResult, ExecSpec, Job, JobKind
from remote_exec.local_runner import run_spec
from remote_exec.queue import JobQueue
from remote_exec.sandbox import Sandbox, SandboxUnavailable
from remote_exec.settings import DispatcherConfig

log = logging.getLogger("remote_exec.routing")
WAITING_FOR_REMOTE = "waiting for a remote: "
"""The reason prefix of jobs that wait only for a remote to come back."""
_converter = cattrs.Converter()


class Router:
    def __init__(
        self,
        config: DispatcherConfig,
        queue: JobQueue,
        health: RemoteHealth,
        gateway: execution.ExecutionClient | None,
        sandbox: Sandbox,
        on_change: Callable[[], None],
    ) -> None:
        self.config = config
        self.queue = queue
        self._health = health
        self._gateway = gateway
        self.sandbox = sandbox
        self._on_change = on_change
        self._post = post_for(config.cassette, config.endpoints)
        """How inference is sent: to the network, or to a cassette (record or replay)."""
        self._running_locally = 0
        self._counter_lock = threading.Lock()

    @property
    def running_locally(self) -> int:
        return self._running_locally

    def run(self, job: Job, lost: threading.Event) -> None:
        """Run the job where it can run now, and record the outcome in the queue (fenced on
        the job's lease owner). `lost` is set if the lease is lost meanwhile."""
        if job.kind == JobKind.INFERENCE:
            self._run_inference(job)
        elif job.kind == JobKind.EXEC:
            self._run_exec(job, lost)
        else:
            self.queue.fail(
                job.id, job.lease_owner, f"unknown job kind {job.kind!r}", permanent=True
            )

    def _run_inference(self, job: Job) -> None:
        try:
            request = inference.InferenceRequest.from_body(job.payload)
        except Exception as exc:
            self.queue.fail(
                job.id, job.lease_owner, f"not an inference request: {exc}", permanent=True
            )
            return
        try:
            result = inference.call_chain(
                self.config.endpoints,
                request,
                self.config.outbound,
                skip=self._health.is_open,
                on_outcome=self._health.record,
                post=self._post,
            )
        except inference.RetryLater as exc:
            self.queue.release(
                job.id, job.lease_owner, not_before=exc.not_before, reason=exc.reason
            )
        except inference.EndpointDown as exc:
            self._wait_for_remote(job, exc.reason)
        except (inference.Parked, inference.Unusable) as exc:
            # a spend limit, a missing key, a wrong URL: waiting will not help, a person will
            self.queue.park(job.id, job.lease_owner, exc.reason)
        except (inference.BadAnswer, inference.Rejected) as exc:
            self.queue.fail(
                job.id, job.lease_owner, exc.reason, permanent=isinstance(exc, inference.Rejected)
            )
        else:
            self.queue.complete(job.id, job.lease_owner, result.to_dict())

    def _run_exec(self, job: Job, lost: threading.Event) -> None:
        try:
            spec = _converter.structure(job.payload, ExecSpec)
        except Exception as exc:
            self.queue.fail(job.id, job.lease_owner, f"not an exec spec: {exc}", permanent=True)
            return
        retry_at: float | None = None
        if self._gateway is not None and not self._health.is_open(self.config.gateway.name):
            try:
                result = self._run_remote(job, spec, lost)
            except execution.GatewayRejected as exc:
                self.queue.fail(
                    job.id, job.lease_owner, f"the gateway refused the job: {exc}", permanent=True
                )
                return
            except execution.GatewayBusy as exc:
                retry_at = time.time() + exc.retry_after_s
            except Exception as exc:  # down, lost, or the breaker just opened: fall back
                log.info("gateway unavailable for job %s: %s", job.id, exc)
            else:
                self.queue.complete(job.id, job.lease_owner, _converter.unstructure(result))
                return
        if lost.is_set():
            return  # cancelled or reclaimed while remote: not ours to run any more
        if spec.resources.gpus == 0 and self.config.local_fallback:
            self._run_locally(job, spec, lost)
        elif retry_at is not None:
            self.queue.release(
                job.id, job.lease_owner, not_before=retry_at, reason="the gateway is busy"
            )
        else:
            what = (
                "GPU jobs wait for the gateway" if spec.resources.gpus else "no gateway reachable"
            )
            self._wait_for_remote(job, what)

    def _run_remote(self, job: Job, spec: ExecSpec, lost: threading.Event) -> ExecResult:
        """Submit (idempotent on the job key: a resubmission after a crash or a gateway restart
        never runs a finished job twice) and follow the job to its end."""
        gateway, name = self._gateway, self.config.gateway.name
        remote = self._health.call(name, gateway.submit, job.key, spec)
        # The deadline runs from the job's start there: waiting in the gateway's queue (for a
        # GPU, for a slot) is not overrunning. Counting it cancelled jobs that had not started,
        # and the resubmission under the same key then returned that cancelled record, so the
        # job ended "done" without ever running.
        deadline: float | None = None
        while not remote.done:
            if deadline is None and remote.state != "queued":
                deadline = time.monotonic() + spec.timeout_s + self.config.gateway.read_timeout_s
            if lost.is_set():  # cancelled or reclaimed here: stop it there too
                gateway.cancel(remote.id)
                raise execution.JobLost("the job was cancelled here")
            if deadline is not None and time.monotonic() > deadline:
                gateway.cancel(remote.id)
                raise execution.GatewayDown(f"job {remote.id} overran its deadline on the gateway")
            try:
                remote = self._health.call(
                    name, gateway.wait, remote.id, deadline_s=1.0, poll_s=0.1
                )
            except execution.JobLost:  # the gateway restarted mid-job: the key runs it afresh
                remote = self._health.call(name, gateway.submit, job.key, spec)
                deadline = None
        return gateway.result(remote)

    def _run_locally(self, job: Job, spec: ExecSpec, lost: threading.Event) -> None:
        with self._counter_lock:
            self._running_locally += 1
        self._on_change()
        try:
            result = run_spec(spec, self.sandbox, self.config.work_root, cancel=lost)
        except SandboxUnavailable as exc:  # a person must install bubblewrap (or opt out)
            self.queue.park(job.id, job.lease_owner, str(exc))
            return
        except BundleError as exc:
            self.queue.fail(job.id, job.lease_owner, f"invalid bundle: {exc}", permanent=True)
            return
        finally:
            with self._counter_lock:
                self._running_locally -= 1
        if not lost.is_set():
            self.queue.complete(job.id, job.lease_owner, _converter.unstructure(result))

    def _wait_for_remote(self, job: Job, reason: str) -> None:
        """Back to the queue without using an attempt: the remote is down, not the job. It looks
        again after retry_down_s, or as soon as a remote recovers (Dispatcher wakes it)."""
        not_before = time.time() + self.config.retry_down_s
        self.queue.release(
            job.id, job.lease_owner, not_before=not_before, reason=WAITING_FOR_REMOTE + reason
        )
