"""The `gantry/status` notification: one summary of what the server is doing, sent when it
changes; editors show it in their status bar or statusline."""

from __future__ import annotations

from typing import Literal

import attrs

State = Literal["ready", "busy", "queued", "degraded", "offline"]
RemoteHealth = Literal["up", "down", "probing"]
GatewayHealth = Literal["unknown", "up", "down", "draining"]


@attrs.frozen
class StatusCounts:
    documents: int
    """Open documents."""
    reviewing: int
    """Reviews running or waiting, open documents and files on disk."""
    indexing: int
    """1 while the workspace is being indexed."""
    findings: int
    """Findings published, over all documents."""
    queued: int
    """Remote jobs waiting or running."""
    parked: int
    dead: int
    running_locally: int
    """Remote jobs running on this machine while their remote is down."""
    ai_waiting: int = 0
    """Units whose AI review waits for the model (queued while no endpoint answers)."""


@attrs.frozen
class GatewayStatus:
    """One execution gateway: its health and the capacity it reports (None until it has)."""

    name: str
    health: GatewayHealth
    labels: dict[str, str] = attrs.Factory(dict)
    slots: int | None = None
    """Jobs it runs at once."""
    free_slots: int | None = None
    gpus: int | None = None
    free_gpus: int | None = None
    jobs: int = 0
    """Jobs of this workspace there now."""


@attrs.frozen
class Status:
    state: State
    message: str
    counts: StatusCounts
    remotes: dict[str, RemoteHealth]
    """Each configured remote by name."""
    gateways: list[GatewayStatus] = attrs.Factory(list)
    """Each execution gateway, with its capacity."""
