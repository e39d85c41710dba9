"""One thread per gateway: asks it for its health and capacity (backing off while it does not
answer) and follows this dispatcher's jobs there to their end, so that no dispatcher worker
waits on a remote job: workers are for placing jobs and for local work.

A job that cannot end there is handed back (`Moved`) to be placed again, under the same key:
its gateway died, restarted and forgot it, or is draining while the job has not started. The
queue records one result whatever happens.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

import attrs
import pybreaker

from remote_exec import execution
from remote_exec.capacity import GatewayPool, Placement, Reported
from remote_exec.health import RemoteHealth
from remote_exec.jobs import ExecResult, ExecSpec, Job

log = logging.getLogger("remote_exec.follow")
_FOLLOW_S = 0.2
"""How often our jobs there are looked at."""
_MOVE_AFTER = 2
"""Health polls in a row left unanswered before its jobs are moved: one slow answer is not a
dead gateway, and a job moved off a live one runs twice (recorded once)."""


@attrs.define(eq=False)
class Followed:
    job: Job
    spec: ExecSpec
    lost: threading.Event
    """Set when the job was cancelled or its lease lost here: stop it there too."""
    placement: Placement
    remote: execution.RemoteJob
    deadline: float | None = None
    """From its start there (time.monotonic): waiting there for a slot is not overrunning."""


@attrs.frozen
class Finished:
    result: ExecResult


@attrs.frozen
class Moved:
    reason: str


@attrs.frozen
class Dropped:
    """Cancelled, or no longer ours: nothing to record."""


Outcome = Finished | Moved | Dropped


class GatewayFollower:
    def __init__(
        self,
        name: str,
        client: execution.ExecutionClient,
        pool: GatewayPool,
        health: RemoteHealth,
        on_end: Callable[[Followed, Outcome], None],
        is_cancelled: Callable[[int], bool],
        *,
        interval_s: float,
        max_interval_s: float,
        stop: threading.Event,
    ) -> None:
        self.name, self.client = name, client
        self._pool, self._health, self._on_end = pool, health, on_end
        self._is_cancelled = is_cancelled
        """Whether a job whose lease we lost was cancelled (not taken over by another)."""
        self._interval_s, self._max_interval_s = interval_s, max(interval_s, max_interval_s)
        self._stop = stop
        self._jobs: dict[int, Followed] = {}
        self._unanswered = 0
        """Health polls in a row without an answer."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"gantry-gw-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def follow(self, followed: Followed) -> None:
        with self._lock:
            self._jobs[followed.job.id] = followed
        self._wake.set()

    def poke(self) -> None:
        """Look at the jobs now (one was cancelled)."""
        self._wake.set()

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        delay, next_poll = self._interval_s, 0.0
        # After stop() the jobs already there are still followed to their end, as a worker
        # used to (and moved if the gateway dies meanwhile).
        while not (self._stop.is_set() and not self._jobs):
            now = time.monotonic()
            if now >= next_poll:
                answered = self._poll()
                delay = self._interval_s if answered else min(self._max_interval_s, delay * 2)
                next_poll = time.monotonic() + delay
            for followed in self._followed():
                try:
                    self._look_at(followed)
                except Exception:  # one bad answer must not stop the others being followed
                    log.exception("following job %s on %s failed", followed.job.id, self.name)
            wait = _FOLLOW_S if self._jobs else max(0.0, next_poll - time.monotonic())
            self._wake.wait(min(wait, self._interval_s, _FOLLOW_S * 5))
            self._wake.clear()

    def _followed(self) -> list[Followed]:
        with self._lock:
            return list(self._jobs.values())

    def _poll(self) -> bool:
        """Ask the gateway for its health; tell the pool and the breaker."""
        changes = self._pool.changes(self.name)
        try:
            report = Reported.from_health(self.client.health())
        except execution.GatewayRejected as exc:  # a wrong token: up, but useless to us
            log.warning("gateway %s refuses our token: %s", self.name, exc)
            report = None
        except (execution.GatewayError, ValueError) as exc:
            log.info("gateway %s does not answer: %s", self.name, exc)
            report = None
        self._unanswered = 0 if report is not None else self._unanswered + 1
        self._health.observe(self.name, report is not None)
        self._pool.reported(self.name, report, changes)
        return report is not None

    def _look_at(self, followed: Followed) -> None:
        if followed.lost.is_set():
            # Cancelled here: stop it there. Reclaimed by another process (our lease ran out):
            # leave it running, that process asks this gateway for the same key and follows it
            # (a cancelled record there would answer for the key from then on).
            if self._is_cancelled(followed.job.id):
                with contextlib.suppress(Exception):  # best effort: it may be down
                    self.client.cancel(followed.remote.id)
            return self._end(followed, Dropped())
        if self._unanswered >= _MOVE_AFTER:
            return self._end(followed, Moved(f"gateway {self.name} is down"))
        try:
            remote = self._health.call(self.name, self.client.get, followed.remote.id)
        except execution.JobLost:
            return self._end(followed, Moved(f"gateway {self.name} no longer knows the job"))
        except execution.GatewayRejected as exc:  # e.g. the token was revoked there
            return self._end(followed, Moved(f"gateway {self.name} refuses to show it: {exc}"))
        except (execution.GatewayError, pybreaker.CircuitBreakerError) as exc:
            log.info("job %s on %s: %s", followed.job.id, self.name, exc)
            return  # down is decided by the health polls
        followed.remote = remote
        if remote.done:  # cancelled there too, by its operator: resubmitting the key says so
            return self._end(followed, Finished(self.client.result(remote)))
        if remote.state == "queued" and self._pool.is_draining(self.name):
            with contextlib.suppress(Exception):
                self.client.cancel(remote.id)
            return self._end(followed, Moved(f"gateway {self.name} is draining"))
        now = time.monotonic()
        if followed.deadline is None and remote.state != "queued":
            target = self._pool.target(self.name)
            followed.deadline = now + followed.spec.timeout_s + target.read_timeout_s
        if followed.deadline is not None and now > followed.deadline:
            # The gateway enforces the timeout itself; this is for one that does not: stop it
            # there, and record that end when it is seen.
            log.warning("job %s overran its deadline on %s: cancelling it", remote.id, self.name)
            with contextlib.suppress(Exception):
                self.client.cancel(remote.id)

    def _end(self, followed: Followed, outcome: Outcome) -> None:
        with self._lock:
            self._jobs.pop(followed.job.id, None)
        self._on_end(followed, outcome)
