"""The one facade over the queue, its workers and routing: submit a job, wait for it or subscribe
to its end, cancel it, read status. Workers claim jobs from the durable queue, keep their leases
alive and hand each to the Router (routing.py), which decides where it runs. Nothing is dropped:
every job lives in the queue until it is done, dead (kept for inspection), parked or cancelled.

Threads, not asyncio: queue I/O must never run on an event loop, and the same dispatcher
serves the language server, `gantry queue` and tests. Asyncio code (the language server) uses
it through remote_exec.aio, never directly.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import attrs

from remote_exec import execution, inference
from remote_exec.capacity import GatewayPool, GatewayState
from remote_exec.credentials import SecretMissing
from remote_exec.follow import GatewayFollower
from remote_exec.health import RemoteHealth, tcp_probe
from remote_exec.jobs import Job, JobKind, JobState, Priority, Resources
from remote_exec.queue import CPU_ONLY, JobQueue
from remote_exec.routing import WAITING_FOR_REMOTE, Router
from remote_exec.sandbox import Sandbox
from remote_exec.settings import DispatcherConfig

log = logging.getLogger("remote_exec.dispatcher")
TERMINAL = frozenset({JobState.DONE, JobState.DEAD, JobState.CANCELLED, JobState.PARKED})


@attrs.define(eq=False)
class _Subscription:
    on_end: Callable[[Job | None], None]
    on_change: Callable[[Job], None] | None
    seen: str | None = None
    """The state on_change was last given."""

    def tell(self, job_id: int, job: Job | None, ended: bool) -> None:
        try:
            if self.on_change is not None and job is not None and job.state != self.seen:
                self.seen = job.state
                self.on_change(job)
            if ended:
                self.on_end(job)
        except Exception:
            log.exception("a subscriber of job %s failed", job_id)


@attrs.frozen
class DispatcherStatus:
    state: str
    """ready | queued | degraded | offline"""
    message: str
    remotes: dict[str, str]
    """name -> up | down | probing"""
    queue: dict[str, int]
    running_locally: int
    gateways: tuple[GatewayState, ...] = ()
    """Each gateway's health and capacity, as this dispatcher sees them."""


class Dispatcher:
    def __init__(
        self,
        config: DispatcherConfig,
        *,
        on_status: Callable[[DispatcherStatus], None] = lambda status: None,
        announce: Callable[[str], None] = log.warning,
    ) -> None:
        self.config = config
        self.queue = JobQueue(config.queue_path)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._on_status = on_status
        self._last_status: DispatcherStatus | None = None
        self._status_lock = threading.Lock()
        self._health = RemoteHealth(
            down_errors=(inference.EndpointDown, execution.GatewayDown),
            on_change=self._publish_status,
            reset_timeout_s=config.probe_interval_s * 3,
        )
        replaying = config.cassette is not None and config.cassette.mode == "replay"
        for endpoint in config.endpoints:
            # A replay never connects: its endpoints are always up, whatever their URL.
            probe = _always_up if replaying else tcp_probe(endpoint.base_url)
            self._health.add(endpoint.name, probe)
        self._stop = threading.Event()
        self._pool = GatewayPool(
            config.gateways, is_down=self._health.is_open, on_change=self._capacity_changed
        )
        self.sandbox = Sandbox(unsandboxed=config.unsandboxed, announce=announce)
        self._router = Router(
            config,
            self.queue,
            self._health,
            self._pool,
            self.sandbox,
            self._publish_status,
            self._drop_lease,
        )
        for gw in config.gateways:
            try:
                token = gw.read_token()
            except SecretMissing as exc:  # this gateway refuses us (401) and gets no job
                announce(f"{exc}: that gateway gets no jobs until it is readable")
                token = None
            client = execution.ExecutionClient(
                gw.url,
                token,
                connect_timeout_s=gw.connect_timeout_s,
                read_timeout_s=gw.read_timeout_s,
            )
            self._health.add(gw.name, None)  # its follower polls it, with backoff
            self._router.followers[gw.name] = GatewayFollower(
                gw.name,
                client,
                self._pool,
                self._health,
                self._router.job_ended,
                self._router.is_cancelled,
                interval_s=config.probe_interval_s,
                max_interval_s=config.max_probe_interval_s,
                stop=self._stop,
            )
        self._wake = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._subscriptions: dict[int, list[_Subscription]] = {}
        self._subscriptions_lock = threading.Lock()
        self._notifier: threading.Thread | None = None
        self._leases: dict[threading.Event, tuple[int, str]] = {}
        """Leases held here: the event set when it is lost -> (job id, lease owner)."""
        self._leases_lock = threading.Lock()

    # -- the facade ---------------------------------------------------------------------------

    def start(self) -> None:
        for follower in self._router.followers.values():
            follower.start()
        for index in range(self.config.max_concurrency):
            self._spawn(self._work, f"gantry-worker-{index}")
        self._spawn(self._watch, "gantry-health")
        self._spawn(self._renew, "gantry-leases")
        self._publish_status()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop taking jobs; a job still running keeps its lease and is reclaimed later."""
        self._stop.set()
        self._notify()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for follower in self._router.followers.values():
            follower.join(max(0.0, deadline - time.monotonic()))

    def submit(
        self,
        key: str,
        kind: JobKind,
        payload: dict[str, Any],
        *,
        resources: Resources = CPU_ONLY,
        priority: Priority = Priority.BACKGROUND,
        max_attempts: int = 5,
    ) -> Job:
        """Enqueue (idempotent on key) and wake a worker. Returns as soon as it is durable."""
        job, created = self.queue.enqueue(
            key, kind, payload, resources=resources, priority=priority, max_attempts=max_attempts
        )
        if created:
            self._notify()
            self._publish_status()
        return job

    def wait(self, job_id: int, timeout_s: float | None = None) -> Job:
        """Block until the job is done, dead, parked or cancelled (or the timeout passes)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            job = self.queue.get(job_id)
            if job is None or job.state in TERMINAL:
                return job
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return job
            with self._wake:  # woken by our own workers; polls for other processes' workers
                self._wake.wait(0.2 if left is None else min(0.2, left))

    def subscribe(
        self,
        job_id: int,
        on_end: Callable[[Job | None], None],
        *,
        on_change: Callable[[Job], None] | None = None,
    ) -> Callable[[], None]:
        """Call `on_end(job)` once, from a dispatcher thread, when the job ends (done, dead,
        parked or cancelled; None if it is gone from the queue), whichever process's worker
        ends it; and `on_change(job)` each time its state is seen to change before that, the
        end included (states are polled: a quick pending -> leased -> done may show as done).
        Returns a function that ends the subscription; a call already under way still comes."""
        subscription = _Subscription(on_end, on_change)
        with self._subscriptions_lock:
            self._subscriptions.setdefault(job_id, []).append(subscription)
            if self._notifier is None:
                self._notifier = threading.Thread(
                    target=self._notify_subscribers, name="gantry-subscriptions", daemon=True
                )
                self._notifier.start()
        self._notify()

        def unsubscribe() -> None:
            with self._subscriptions_lock:
                subscriptions = self._subscriptions.get(job_id, [])
                if subscription in subscriptions:
                    subscriptions.remove(subscription)
                    if not subscriptions:
                        del self._subscriptions[job_id]

        return unsubscribe

    def _notify_subscribers(self) -> None:
        while not self._stop.is_set():
            with self._subscriptions_lock:
                watched = list(self._subscriptions)
            try:
                jobs = self.queue.get_many(watched) if watched else {}
            except Exception:  # the queue file is busy or gone: look again next round
                log.exception("reading the subscribed jobs failed")
                watched = []
            for job_id in watched:
                job = jobs.get(job_id)
                ended = job is None or job.state in TERMINAL
                with self._subscriptions_lock:
                    if ended:
                        subscriptions = self._subscriptions.pop(job_id, [])
                    else:
                        subscriptions = list(self._subscriptions.get(job_id, []))
                for subscription in subscriptions:
                    subscription.tell(job_id, job, ended)
            with self._wake:  # woken by our own workers; polls for other processes' workers
                self._wake.wait(0.2)

    def cancel(self, job_id: int) -> bool:
        """Cancel a job that has not ended; one running here stops now (locally or on the
        gateway), one running in another process at its next lease renewal."""
        cancelled = self.queue.cancel(job_id)
        self._cancelled([job_id] if cancelled else [])
        return cancelled

    def cancel_superseded(self, key_prefix: str) -> list[int]:
        """Cancel every job whose key starts with the prefix (work for an older version), as
        `cancel` does; returns their ids."""
        job_ids = self.queue.cancel_prefix(key_prefix)
        self._cancelled(job_ids)
        return job_ids

    def _cancelled(self, job_ids: list[int]) -> None:
        # Setting `lost` stops a run here at once instead of at the next renewal (lease_s / 3).
        with self._leases_lock:
            for lost, (job_id, _owner) in self._leases.items():
                if job_id in job_ids:
                    lost.set()
        for follower in self._router.followers.values():
            follower.poke()  # one of its jobs may be among them: cancel it there now
        self._notify()  # subscribers hear of it now
        self._publish_status()

    def retry(self, job_id: int) -> bool:
        retried = self.queue.retry(job_id)
        self._notify()
        self._publish_status()
        return retried

    def status(self) -> DispatcherStatus:
        counts = self.queue.counts()
        remotes = self._health.states()
        waiting = counts.get(JobState.PENDING, 0) + counts.get(JobState.LEASED, 0)
        down = [name for name, state in remotes.items() if state != "up"]
        parts = []
        if down and len(down) == len(remotes):
            state = "offline"
            parts.append("remote down" if len(remotes) == 1 else "all remotes down")
        elif down:
            state = "degraded"
            parts.append(f"{', '.join(down)} down")
        elif waiting:
            state = "queued"
        else:
            state = "ready"
        if waiting:
            parts.append(f"{waiting} queued")
        if self._router.running_locally:
            parts.append("running locally")
        gateways = self._pool.states()
        if draining := [g.name for g in gateways if g.health == "draining"]:
            parts.append(f"{', '.join(draining)} draining")
        for name, label in ((JobState.PARKED, "waiting for you"), (JobState.DEAD, "failed")):
            if counts.get(name):
                parts.append(f"{counts[name]} {label}")
        return DispatcherStatus(
            state=state,
            message=", ".join(parts) or "ready",
            remotes=remotes,
            queue=dict(counts),
            running_locally=self._router.running_locally,
            gateways=gateways,
        )

    # -- workers ------------------------------------------------------------------------------

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _notify(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def _work(self) -> None:
        # An owner per worker: the queue fences every outcome on the owner's name, so two
        # workers sharing one could both hold a job (one reclaims the other's expired lease and
        # claims it again) and neither would learn it. The job's lease_owner is used from here.
        owner = f"{self.owner}/{threading.current_thread().name}"
        while not self._stop.is_set():
            try:
                job = self.queue.claim(owner, lease_s=self.config.lease_s)
            except Exception:
                log.exception("claiming a job failed")
                job = None
            if job is None:
                self._sleep_until_due()
                continue
            self._publish_status()
            lost = self._hold_lease(job)
            handed_over = False
            try:
                handed_over = self._router.run(job, lost)
            except Exception as exc:  # a bug must cost one attempt, not the worker
                log.exception("job %s failed unexpectedly", job.id)
                self.queue.fail(job.id, owner, f"internal error: {exc}")
            finally:
                if not handed_over:  # else its gateway's follower drops it when it ends
                    self._drop_lease(lost)
            self._notify()
            self._publish_status()

    def _sleep_until_due(self) -> None:
        due = self.queue.next_due()
        delay = 1.0 if due is None else min(1.0, max(0.0, due - time.time()))
        with self._wake:
            self._wake.wait(delay)

    def _hold_lease(self, job: Job) -> threading.Event:
        """Renew the job's lease until `_drop_lease`; the event is set if the lease is lost (the
        job was cancelled or reclaimed), so the run can stop early."""
        lost = threading.Event()
        with self._leases_lock:
            self._leases[lost] = (job.id, job.lease_owner)
        return lost

    def _drop_lease(self, lost: threading.Event) -> None:
        with self._leases_lock:
            self._leases.pop(lost, None)

    def _renew(self) -> None:
        """One thread renews every lease held here, each at least every lease_s / 3. (A thread
        per job would open a queue connection per job, as the queue keeps one per thread, and
        never close it: a descriptor leak per job.) After stop() it keeps renewing the jobs
        still running, so that no other process reclaims a job that is still being run here."""
        interval = self.config.lease_s / 3
        next_round = time.monotonic() + interval
        while not (self._stop.is_set() and not self._leases):
            if (wait := next_round - time.monotonic()) > 0:
                time.sleep(min(wait, 0.1))  # short naps: stop() need not wait out a round
                continue
            next_round += interval
            with self._leases_lock:
                held = list(self._leases.items())
            for lost, (job_id, owner) in held:
                try:
                    if not self.queue.heartbeat(job_id, owner, self.config.lease_s):
                        lost.set()
                except Exception:  # the queue file is busy or gone: try again next round
                    log.exception("renewing the lease of job %s failed", job_id)

    def _watch(self) -> None:
        """Probe the remotes; on a recovery, wake the workers so the backlog drains."""
        while True:
            try:
                if self._health.probe():  # a remote is back: its backlog may go now
                    self.queue.wake(WAITING_FOR_REMOTE)
                    self._notify()
                self.queue.reclaim_expired()
                self._publish_status()
            except Exception:
                log.exception("health check failed")
            if self._stop.wait(self.config.probe_interval_s):
                return

    def _capacity_changed(self) -> None:
        """A gateway answered, came back, or has room again: the jobs waiting for one look now
        (they wait in the queue, holding no worker)."""
        try:
            if self.queue.wake(WAITING_FOR_REMOTE):
                self._notify()
        except Exception:  # the queue file is busy: they look again after retry_down_s
            log.exception("waking the jobs that wait for a gateway failed")
        self._publish_status()

    def _publish_status(self) -> None:
        try:
            status = self.status()
        except Exception:
            log.exception("reading the queue status failed")
            return
        with self._status_lock:
            if status == self._last_status:
                return
            self._last_status = status
        self._on_status(status)


def _always_up() -> bool:
    return True
