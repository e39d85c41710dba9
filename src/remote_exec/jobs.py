"""The records every part of remote_exec shares: what a job asks for and what it produced."""

from __future__ import annotations

import enum
from typing import Any

import attrs


class Priority(enum.IntEnum):
    """Lower runs first: someone waiting in the editor goes before background work."""

    INTERACTIVE = 0
    BACKGROUND = 10


class JobKind(enum.StrEnum):
    INFERENCE = "inference"
    """A Messages-API call: payload = the request body (model chosen by the endpoint)."""
    EXEC = "exec"
    """Run a command over a bundle of files: payload = an ExecSpec, unstructured."""


class JobState(enum.StrEnum):
    PENDING = "pending"
    LEASED = "leased"
    DONE = "done"
    DEAD = "dead"
    """Out of attempts (or failed for good): kept for inspection and manual retry."""
    PARKED = "parked"
    """Waiting for a person (e.g. a spend limit), not for time: retried only by hand."""
    CANCELLED = "cancelled"


@attrs.frozen
class Resources:
    gpus: int = 0
    cpus: int = 1
    memory_mb: int = 2048
    labels: dict[str, str] = attrs.field(factory=dict, hash=False)
    """What the gateway must offer (its configured labels, e.g. gpu = "h100"). A labelled job
    never runs in the local sandbox; the gateway itself is not told (the client routes)."""


@attrs.frozen
class ExecSpec:
    """A command to run over a bundle of files, remotely or in the local sandbox."""

    files: dict[str, str]
    """Relative path -> content, base64-encoded (bytes survive JSON; paths are checked)."""
    argv: list[str]
    env: dict[str, str] = attrs.Factory(dict)
    """Only names on the receiving side's allow-list reach the process."""
    timeout_s: float = 60.0
    resources: Resources = Resources()
    artifacts: list[str] = attrs.Factory(list)
    """Relative paths collected after the run (e.g. junit.xml, coverage.json)."""
    local_ro: list[str] = attrs.Factory(list)
    """Folders of the client's machine (a project's installed packages) bound read-only when
    the job runs in the client's own sandbox; a gateway, on another machine, never binds them."""


@attrs.frozen
class ExecResult:
    state: str
    """succeeded | failed | timed_out | cancelled"""
    exit_code: int | None
    stdout_tail: str = ""
    stderr_tail: str = ""
    duration_s: float = 0.0
    artifacts: dict[str, str] = attrs.Factory(dict)
    """Relative path -> content, base64-encoded."""
    where: str = "local"
    """"local" (sandbox on this machine) or the gateway's name."""


@attrs.frozen
class Job:
    id: int
    key: str
    kind: str
    payload: dict[str, Any]
    resources: Resources
    priority: int
    state: str
    attempts: int
    max_attempts: int
    not_before: float
    """Epoch seconds before which the job is not claimed."""
    lease_owner: str | None
    lease_until: float | None
    result: dict[str, Any] | None
    error: str | None
    created_at: float
    updated_at: float
    placed: str | None = None
    """The remote it was last sent to (a gateway's name): asked first when it runs again."""
