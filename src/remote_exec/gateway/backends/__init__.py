"""Where the gateway's jobs run. A backend runs jobs and reports; the gateway keeps the books."""

from __future__ import annotations

from typing import Protocol

import attrs

from remote_exec.jobs import ExecResult, ExecSpec


@attrs.frozen
class Capacity:
    max_concurrency: int
    gpus: int
    cpus: int | None = None
    """The most one job can get; None where the backend does not know (it may grow)."""
    memory_mb: int | None = None
    enforcement: dict[str, str] = attrs.Factory(dict)
    """How jobs' memory, CPUs and disk are bounded (see Sandbox.enforcement)."""


class JobEvents(Protocol):
    """How a backend reports on a job; called from any thread."""

    def started(self, job_id: str) -> None: ...
    def output(self, job_id: str, data: bytes) -> None: ...
    def finished(self, job_id: str, result: ExecResult) -> None: ...


class Backend(Protocol):
    name: str

    def capacity(self) -> Capacity: ...

    def check(self, spec: ExecSpec) -> str | None:
        """Why this backend can never run `spec` (a 400), or None."""
        ...

    def submit(self, job_id: str, spec: ExecSpec, events: JobEvents) -> None:
        """Queue a job; it must end with exactly one `events.finished` call."""
        ...

    def cancel(self, job_id: str) -> None:
        """Stop a queued or running job (a running one is killed); unknown ids are ignored."""
        ...

    def close(self) -> None: ...
