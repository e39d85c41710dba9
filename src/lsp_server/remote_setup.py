"""From settings to a remote_exec DispatcherConfig: the settings already hold remote_exec's own
endpoint and gateway types; this adds where the workspace's queue and job directories live.
Secrets stay named, not read: the dispatcher reads them when it starts (remote_exec.credentials).
"""

from __future__ import annotations

from pathlib import Path

from lsp_server.config import Settings, queue_path
from remote_exec.settings import DispatcherConfig


def dispatcher_config(root: Path | None, settings: Settings) -> DispatcherConfig:
    """The DispatcherConfig for a workspace."""
    from platformdirs import user_cache_dir

    execution = settings.execution
    return DispatcherConfig(
        queue_path=queue_path(root, settings),
        work_root=Path(user_cache_dir("gantry")) / "jobs",
        endpoints=tuple(settings.inference.endpoints),
        privacy=settings.inference.privacy,
        exclude=tuple(settings.inference.exclude),
        cassette=settings.inference.cassette,
        gateways=execution.gateway_targets(),
        local_fallback=execution.local_fallback,
        unsandboxed=execution.unsandboxed,
        max_concurrency=execution.max_concurrency,
    )
