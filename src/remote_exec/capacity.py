"""Which gateway a job goes to: the capacity each gateway reports in /v1/health, what this
dispatcher has placed there since, and the labels each was configured with.

A gateway's own report is seconds old and counts every client's jobs; ours change at once. So
the book keeps, from each report, what *other* clients use (the report minus our jobs there at
that moment) and adds our jobs as they are placed and end: free = reported size - others - ours.
Placing reserves, so two workers never both take the last free slot.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

from remote_exec.jobs import Resources
from remote_exec.settings import GatewayTarget

GatewayHealth = Literal["unknown", "up", "down", "draining"]


@attrs.frozen
class Reported:
    """What a gateway said of itself in /v1/health."""

    slots: int
    """Jobs it runs at once."""
    gpus: int
    free_slots: int
    free_gpus: int
    max_cpus: int | None = None
    """The most one job may ask for (None: no bound known)."""
    max_memory_mb: int | None = None
    draining: bool = False

    @classmethod
    def from_health(cls, data: Any) -> Reported:
        """Parse a health answer; ValueError if it is not one. A gateway too old to say what is
        free is taken as full while it has any job (never over-committed)."""
        try:
            capacity, limits = data["capacity"], data.get("limits") or {}
            slots, gpus = _count(capacity["max_concurrency"]), _count(capacity["gpus"])
            if isinstance(free := data.get("free"), Mapping):
                free_slots, free_gpus = _count(free["slots"]), _count(free["gpus"])
            else:
                active = _count(data.get("running", 0)) + _count(data.get("queued", 0))
                free_slots = max(0, slots - active)
                free_gpus = gpus if active == 0 else 0
            return cls(
                slots=slots,
                gpus=gpus,
                free_slots=min(slots, free_slots),
                free_gpus=min(gpus, free_gpus),
                max_cpus=_optional_count(limits.get("cpus")),
                max_memory_mb=_optional_count(limits.get("memory_mb")),
                draining=data.get("draining") is True,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a health answer: {exc!r}") from exc


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"not a count: {value!r}")
    return value


def _optional_count(value: Any) -> int | None:
    return None if value is None else _count(value)


@attrs.frozen
class GatewayState:
    """One gateway as the status and `gantry doctor` show it."""

    name: str
    health: GatewayHealth
    labels: dict[str, str] = attrs.field(factory=dict, hash=False)
    slots: int | None = None
    free_slots: int | None = None
    gpus: int | None = None
    free_gpus: int | None = None
    jobs: int = 0
    """This dispatcher's jobs there now."""


@attrs.frozen
class Placement:
    name: str
    job_id: int


@attrs.frozen
class NoPlacement:
    reason: str
    permanent: bool = False
    """No configured gateway could ever run the job (labels, or more GPUs than any has)."""
    unknown: bool = False
    """A gateway that may have room has not answered its first health poll yet."""


@attrs.define
class _Book:
    target: GatewayTarget
    index: int
    answered: bool | None = None
    """None until the first health poll ends; then whether the last one was answered."""
    reported: Reported | None = None
    others_slots: int = 0
    others_gpus: int = 0
    ours: dict[int, Resources] = attrs.Factory(dict)
    changes: int = 0
    """Bumped whenever `ours` changes: a report taken meanwhile cannot be split reliably."""
    busy_until: float = 0.0
    """After a 429: not offered new jobs before this (time.monotonic)."""
    draining: bool = False

    def free(self) -> tuple[int, int]:
        if self.reported is None:
            return 0, 0
        gpus = sum(r.gpus for r in self.ours.values())
        return (
            max(0, self.reported.slots - self.others_slots - len(self.ours)),
            max(0, self.reported.gpus - self.others_gpus - gpus),
        )

    def health(self) -> GatewayHealth:
        if self.answered is None:
            return "unknown"
        if not self.answered:
            return "down"
        return "draining" if self.draining else "up"

    def could_ever(self, resources: Resources) -> str | None:
        """Why this gateway can never run the job (known from its report), or None."""
        if not _has_labels(self.target.labels, resources.labels):
            return f"{self.target.name} lacks the labels {_labels(resources.labels)}"
        report = self.reported
        if report is None:
            return None
        if resources.gpus > report.gpus:
            return f"{self.target.name} has {report.gpus} GPU(s)"
        if report.max_cpus is not None and resources.cpus > report.max_cpus:
            return f"{self.target.name} gives a job at most {report.max_cpus} CPU(s)"
        if report.max_memory_mb is not None and resources.memory_mb > report.max_memory_mb:
            return f"{self.target.name} gives a job at most {report.max_memory_mb} MB"
        return None


def _has_labels(offered: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(offered.get(key) == value for key, value in wanted.items())


def _labels(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


class GatewayPool:
    """The capacity book of every configured gateway. Thread-safe."""

    def __init__(
        self,
        targets: tuple[GatewayTarget, ...],
        *,
        is_down: Callable[[str], bool],
        on_change: Callable[[], None],
    ) -> None:
        self._books = {t.name: _Book(t, i) for i, t in enumerate(targets)}
        self._is_down = is_down
        """Whether a gateway's circuit breaker is open (its calls failed, or a probe did)."""
        self._on_change = on_change
        """Told when capacity may have appeared: a gateway answered, freed room, came back."""
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self._books)

    def target(self, name: str) -> GatewayTarget:
        return self._books[name].target

    # -- placing ------------------------------------------------------------------------------

    def place(
        self, job_id: int, resources: Resources, *, was_on: str | None = None
    ) -> Placement | NoPlacement:
        """Reserve room for the job on the gateway with the most free slots (the most free
        GPUs first, for a GPU job; then the one with fewer of our jobs, then the first
        configured), or say why there is none now. A job that `was_on` a gateway still up
        goes back there whatever its room: it may be running there already (another process
        sent it and died), and that gateway answers for its key."""
        now = time.monotonic()
        with self._lock:
            usable = {
                name: book
                for name, book in self._books.items()
                if book.health() == "up"
                and not self._is_down(name)
                and book.busy_until <= now
                and book.could_ever(resources) is None
            }
            if was_on in usable:
                name = was_on
            else:
                fits = []
                for name, book in usable.items():
                    slots, gpus = book.free()
                    if slots >= 1 and gpus >= resources.gpus:
                        rank = (gpus if resources.gpus else 0, slots, -len(book.ours), -book.index)
                        fits.append((rank, name))
                if not fits:
                    return self._why_not(resources)
                name = max(fits)[1]
            book = self._books[name]
            book.ours[job_id] = resources
            book.changes += 1
            return Placement(name, job_id)

    def _why_not(self, resources: Resources) -> NoPlacement:
        books = list(self._books.values())
        if not books:
            return NoPlacement("no gateway configured")
        never = [book.could_ever(resources) for book in books]
        if all(never):
            return NoPlacement("no gateway can run it: " + "; ".join(never), permanent=True)
        usable = [b for b, why in zip(books, never, strict=True) if why is None]
        states = {b.target.name: b.health() for b in usable}
        if all(state == "down" or self._is_down(n) for n, state in states.items()):
            return NoPlacement("no gateway reachable")
        if any(state == "unknown" for state in states.values()):
            return NoPlacement("a gateway has not answered yet", unknown=True)
        if all(state in ("down", "draining") for state in states.values()):
            return NoPlacement("every gateway that could run it is down or draining")
        what = "a free GPU" if resources.gpus else "a free slot"
        return NoPlacement(f"no gateway has {what}")

    def unreserve(self, placement: Placement) -> None:
        """The job ended there, or never got there: its room is free again."""
        with self._lock:
            book = self._books[placement.name]
            if book.ours.pop(placement.job_id, None) is None:
                return
            book.changes += 1
        self._on_change()

    def busy(self, name: str, retry_after_s: float) -> None:
        """A 429: the gateway is up but refuses more of our jobs for a while."""
        with self._lock:
            self._books[name].busy_until = time.monotonic() + retry_after_s

    def draining(self, name: str) -> None:
        """It refused a new job as draining: offer it none until it reports otherwise."""
        with self._lock:
            self._books[name].draining = True

    def is_draining(self, name: str) -> bool:
        with self._lock:
            return self._books[name].draining

    # -- what the gateways report -------------------------------------------------------------

    def changes(self, name: str) -> int:
        """Take before asking a gateway for its health; give to `reported`."""
        with self._lock:
            return self._books[name].changes

    def reported(self, name: str, report: Reported | None, changes_before: int) -> None:
        """The outcome of a health poll (None: it did not answer)."""
        with self._lock:
            book = self._books[name]
            before = (book.health(), book.free())
            book.answered = report is not None
            if report is not None:
                book.reported = report
                book.draining = report.draining
                if book.changes == changes_before:  # else keep the last estimate
                    ours_gpus = sum(r.gpus for r in book.ours.values())
                    book.others_slots = max(0, report.slots - report.free_slots - len(book.ours))
                    book.others_gpus = max(0, report.gpus - report.free_gpus - ours_gpus)
            after = (book.health(), book.free())
        if after != before:
            self._on_change()

    def states(self) -> tuple[GatewayState, ...]:
        with self._lock:
            out = []
            for name, book in self._books.items():
                report = book.reported
                slots, gpus = book.free()
                out.append(
                    GatewayState(
                        name=name,
                        health="down" if self._is_down(name) else book.health(),
                        labels=dict(book.target.labels),
                        slots=report.slots if report else None,
                        free_slots=slots if report else None,
                        gpus=report.gpus if report else None,
                        free_gpus=gpus if report else None,
                        jobs=len(book.ours),
                    )
                )
            return tuple(out)
