"""Health of each remote (inference endpoints, the gateways): a circuit breaker per remote, and
probes that close a breaker as soon as its remote answers again.

pybreaker counts failures; we only let it count "the remote is down" errors, never a 4xx, a
bad answer or a 429 (a busy remote is up).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pybreaker

log = logging.getLogger("remote_exec.health")

Probe = Callable[[], bool]


def tcp_probe(url: str, timeout_s: float = 1.0) -> Probe:
    """A remote is reachable if its port accepts a connection: Messages-API servers have no
    common health endpoint, and a connect costs nothing on the remote."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return True
        except OSError:
            return False

    return probe


class _Listener(pybreaker.CircuitBreakerListener):
    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change

    def state_change(self, cb, old_state, new_state) -> None:
        log.info("remote %s: %s -> %s", cb.name, old_state and old_state.name, new_state.name)
        self._on_change()


class RemoteHealth:
    """Breakers and probes for a set of named remotes."""

    def __init__(
        self,
        *,
        down_errors: tuple[type[BaseException], ...],
        on_change: Callable[[], None] = lambda: None,
        fail_max: int = 3,
        reset_timeout_s: float = 15.0,
    ) -> None:
        self._down_errors = down_errors
        self._listener = _Listener(on_change)
        self._fail_max = fail_max
        self._reset_timeout_s = reset_timeout_s
        self._breakers: dict[str, pybreaker.CircuitBreaker] = {}
        self._probes: dict[str, Probe | None] = {}
        self._lock = threading.Lock()

    def add(self, name: str, probe: Probe | None) -> None:
        """A remote; without a probe its owner reports what it sees (`observe`)."""
        with self._lock:
            self._breakers[name] = pybreaker.CircuitBreaker(
                fail_max=self._fail_max,
                reset_timeout=self._reset_timeout_s,
                name=name,
                listeners=[self._listener],
                # Only "the remote is down" opens the circuit.
                exclude=[lambda exc: not isinstance(exc, self._down_errors)],
                throw_new_error_on_trip=False,  # callers need the remote's own error
            )
            self._probes[name] = probe

    def call(self, name: str, fn: Callable, *args, **kwargs):
        """fn(*args), its outcome counted by the remote's breaker; raises
        pybreaker.CircuitBreakerError, without calling fn, while the circuit is open (the
        probes close it when the remote answers again).

        Not pybreaker's own ``call``: that holds the breaker's lock for the whole of fn, so one
        hung request to a remote stalled every other call to it (and the probe opening its
        breaker) for its full timeout: N jobs on a hung gateway fell back after N timeouts.
        """
        if self.is_open(name):
            raise pybreaker.CircuitBreakerError(f"{name}: circuit open")
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            self.record(name, exc)
            raise
        self.record(name, None)
        return result

    def record(self, name: str, error: BaseException | None) -> None:
        """Tell the remote's breaker how a call made elsewhere went (None: it answered)."""

        def replay() -> None:
            if error is not None:
                raise error

        with contextlib.suppress(Exception):  # the caller handles the error itself
            self._breakers[name].call(replay)

    def is_open(self, name: str) -> bool:
        return self._breakers[name].current_state == pybreaker.STATE_OPEN

    def states(self) -> dict[str, str]:
        """name -> up | down | probing."""
        names = {pybreaker.STATE_CLOSED: "up", pybreaker.STATE_OPEN: "down"}
        return {n: names.get(b.current_state, "probing") for n, b in self._breakers.items()}

    def probe(self) -> list[str]:
        """Probe every remote: open the breaker of one that stopped answering (so the status is
        true before any job fails on it) and close that of one that answers again. Returns the
        remotes that recovered."""
        recovered = []
        for name, probe in list(self._probes.items()):
            if probe is None:
                continue
            started = time.monotonic()
            if self.observe(name, probe()):
                recovered.append(name)
                log.info(
                    "remote %s answers again (%.0f ms)", name, 1000 * (time.monotonic() - started)
                )
        return recovered

    def observe(self, name: str, answers: bool) -> bool:
        """What a probe of the remote found: open its breaker if it stopped answering, close
        it if it answers again. Returns whether it recovered."""
        breaker = self._breakers[name]
        if answers and breaker.current_state != pybreaker.STATE_CLOSED:
            breaker.close()
            return True
        if not answers and breaker.current_state == pybreaker.STATE_CLOSED:
            breaker.open()
        return False
