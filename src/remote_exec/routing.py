"""Where a job runs, per DESIGN.md: inference walks the endpoint chain (a circuit breaker per
endpoint) and otherwise waits queued; exec jobs go to a gateway with room for them (capacity.py),
CPU ones fall back to the local sandbox when none has, GPU ones wait for one. Every outcome is
written to the queue, fenced on the job's lease owner.

Waiting never holds a worker: a job placed on a gateway is followed there by that gateway's
thread (follow.py), and one that finds no room goes back to the queue until capacity appears.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import cattrs

from remote_exec import execution, inference
from remote_exec.bundle import BundleError
from remote_exec.capacity import GatewayPool, NoPlacement, Placement
from remote_exec.follow import Dropped, Finished, Followed, GatewayFollower, Moved, Outcome
from remote_exec.health import RemoteHealth
from remote_exec.inference.cassette import post_for
from remote_exec.jobs import ExecSpec, Job, JobKind, JobState, Resources
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
        pool: GatewayPool,
        sandbox: Sandbox,
        on_change: Callable[[], None],
        release_lease: Callable[[threading.Event], None],
    ) -> None:
        self.config = config
        self.queue = queue
        self._health = health
        self._pool = pool
        self.followers: dict[str, GatewayFollower] = {}
        """Set by the dispatcher: each gateway's thread, by name."""
        self.sandbox = sandbox
        self._on_change = on_change
        self._release_lease = release_lease
        """Stop renewing a lease handed over to a follower, once its job ended there."""
        self._post = post_for(config.cassette, config.endpoints)
        """How inference is sent: to the network, or to a cassette (record or replay)."""
        self._running_locally = 0
        self._counter_lock = threading.Lock()

    @property
    def running_locally(self) -> int:
        return self._running_locally

    def run(self, job: Job, lost: threading.Event) -> bool:
        """Run the job where it can run now, and record the outcome in the queue (fenced on
        the job's lease owner). `lost` is set if the lease is lost meanwhile. True when the job
        went on to a gateway, whose follower now keeps the lease (and ends it)."""
        if job.kind == JobKind.INFERENCE:
            self._run_inference(job)
        elif job.kind == JobKind.EXEC:
            return self._run_exec(job, lost)
        else:
            self.queue.fail(
                job.id, job.lease_owner, f"unknown job kind {job.kind!r}", permanent=True
            )
        return False

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

    def _run_exec(self, job: Job, lost: threading.Event) -> bool:
        try:
            spec = _converter.structure(job.payload, ExecSpec)
        except Exception as exc:
            self.queue.fail(job.id, job.lease_owner, f"not an exec spec: {exc}", permanent=True)
            return False
        resources = spec.resources
        retry_at: float | None = None
        why = NoPlacement("no gateway configured")
        for _ in self._pool.names:  # each gateway at most once: one may refuse, another take it
            placement = self._pool.place(job.id, resources, was_on=job.placed)
            if isinstance(placement, NoPlacement):
                why = placement
                break
            why = NoPlacement("every gateway with room refused it for now")
            try:
                self._submit(job, spec, lost, placement)
            except execution.GatewayRejected as exc:
                self._pool.unreserve(placement)
                self.queue.fail(
                    job.id,
                    job.lease_owner,
                    f"gateway {placement.name} refused the job: {exc}",
                    permanent=True,
                )
                return False
            except execution.GatewayBusy as exc:
                self._pool.unreserve(placement)
                self._pool.busy(placement.name, exc.retry_after_s)
                retry_at = min(retry_at or float("inf"), time.time() + exc.retry_after_s)
            except execution.GatewayDraining:
                self._pool.unreserve(placement)
                self._pool.draining(placement.name)
            except Exception as exc:  # down, or the breaker just opened: try another
                self._pool.unreserve(placement)
                log.info("gateway %s unavailable for job %s: %s", placement.name, job.id, exc)
            else:
                return True
        if lost.is_set():
            return False  # cancelled or reclaimed meanwhile: not ours to run any more
        if self._may_run_here(resources) and not why.unknown:
            self._run_locally(job, spec, lost)
        elif why.permanent:
            self.queue.fail(job.id, job.lease_owner, why.reason, permanent=True)
        elif retry_at is not None:
            self.queue.release(
                job.id, job.lease_owner, not_before=retry_at, reason="the gateway is busy"
            )
        else:
            what = "GPU jobs wait for a gateway" if resources.gpus else "it waits for a gateway"
            self._wait_for_remote(job, f"{what}: {why.reason}")
        return False

    def _may_run_here(self, resources: Resources) -> bool:
        """CPU jobs may fall back to the local sandbox; a labelled job asks for a gateway."""
        return resources.gpus == 0 and not resources.labels and self.config.local_fallback

    def _submit(
        self, job: Job, spec: ExecSpec, lost: threading.Event, placement: Placement
    ) -> None:
        """Submit (idempotent on the job key: a resubmission after a crash, a gateway restart
        or a move from another gateway never runs a finished job twice there) and hand the job
        to the gateway's follower."""
        follower = self.followers[placement.name]
        remote = self._health.call(placement.name, follower.client.submit, job.key, spec)
        follower.follow(Followed(job, spec, lost, placement, remote))
        if job.placed != placement.name:
            try:  # a hint for whoever runs it after us: never a reason to send it elsewhere
                self.queue.placed(job.id, job.lease_owner, placement.name)
            except Exception:
                log.exception("noting where job %s went failed", job.id)

    def is_cancelled(self, job_id: int) -> bool:
        job = self.queue.get(job_id)
        return job is None or job.state == JobState.CANCELLED

    def job_ended(self, followed: Followed, outcome: Outcome) -> None:
        """A follower's word on a job it followed: record it, or send the job back to the
        queue to be placed again (no attempt used: the gateway failed, not the job)."""
        job, owner = followed.job, followed.job.lease_owner
        try:
            if isinstance(outcome, Finished):
                self.queue.complete(job.id, owner, _converter.unstructure(outcome.result))
            elif isinstance(outcome, Moved):
                log.info("job %s moves: %s", job.id, outcome.reason)
                self.queue.release(
                    job.id, owner, not_before=time.time(), reason=f"moved: {outcome.reason}"
                )
            else:
                assert isinstance(outcome, Dropped)
        finally:
            self._release_lease(followed.lost)
            self._pool.unreserve(followed.placement)

    def _run_locally(self, job: Job, spec: ExecSpec, lost: threading.Event) -> None:
        with self._counter_lock:
            self._running_locally += 1
        self._on_change()
        try:
            result = run_spec(
                spec, self.sandbox, self.config.work_root, cancel=lost, local_binds=True
            )
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
        """Back to the queue without using an attempt: no remote can take it now, which says
        nothing about the job. It looks again after retry_down_s, or as soon as a remote
        recovers or a gateway has room (the dispatcher wakes it)."""
        not_before = time.time() + self.config.retry_down_s
        self.queue.release(
            job.id, job.lease_owner, not_before=not_before, reason=WAITING_FOR_REMOTE + reason
        )
