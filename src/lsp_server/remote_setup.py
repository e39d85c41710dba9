"""From settings to a remote_exec Dispatcher: endpoints, the gateway and its token, the queue.

Secrets are read here, at the last moment, from the environment or files named in settings.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from lsp_server.config import GatewaySettings, Settings, queue_path


class SecretMissing(ValueError):
    pass


def read_secret(env: str | None, file: str | None, what: str) -> str | None:
    """The secret from the environment variable, else the file; None when neither is set."""
    if env and os.environ.get(env):
        return os.environ[env].strip()
    if file:
        try:
            return Path(file).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretMissing(f"{what}: cannot read {file}: {exc.strerror}") from exc
    return None


def gateway_target(gateway: GatewaySettings):
    from remote_exec.dispatcher import GatewayTarget

    token = read_secret(gateway.token_env, gateway.token_file, f"gateway {gateway.name}")
    return GatewayTarget(
        url=gateway.url,
        name=gateway.name,
        token=token,
        connect_timeout_s=gateway.connect_timeout_s,
        read_timeout_s=gateway.read_timeout_s,
    )


def dispatcher_config(root: Path | None, settings: Settings):
    """The DispatcherConfig for a workspace (imports remote_exec only when called)."""
    from platformdirs import user_cache_dir

    from remote_exec.dispatcher import DispatcherConfig
    from remote_exec.inference import Endpoint

    # EndpointSettings names the same fields: the settings are the endpoint, as typed by a user
    endpoints = tuple(Endpoint(**attrs.asdict(e)) for e in settings.inference.endpoints)
    execution = settings.execution
    return DispatcherConfig(
        queue_path=queue_path(root, settings),
        work_root=Path(user_cache_dir("gantry")) / "jobs",
        endpoints=endpoints,
        privacy=settings.inference.privacy,
        gateway=gateway_target(execution.gateway) if execution.gateway else None,
        local_fallback=execution.local_fallback,
        unsandboxed=execution.unsandboxed,
        max_concurrency=execution.max_concurrency,
    )
