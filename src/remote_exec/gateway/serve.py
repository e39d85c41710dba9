"""`gantry gateway`: build the config and backend, then serve with uvicorn (logs on stderr)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import attrs
import platformdirs
import uvicorn

from remote_exec.gateway.app import create_app
from remote_exec.gateway.backends import Backend
from remote_exec.gateway.config import (
    GatewayConfig,
    Limits,
    Retention,
    TokenFileError,
    load_tokens,
)
from remote_exec.sandbox import DEFAULT_DISK_MB

log = logging.getLogger("remote_exec.gateway")


@attrs.frozen
class RayOptions:
    address: str | None = None
    """An existing cluster (its head's `host:port`, or `auto`); None starts a local one."""
    gpu_resource: str | None = None
    max_retries: int = 3


def make_backend(
    name: str, config: GatewayConfig, max_concurrency: int, ray_options: RayOptions | None = None
) -> Backend:
    if name == "local":
        from remote_exec.gateway.backends.local import LocalBackend
        from remote_exec.sandbox import Sandbox, SandboxUnavailable

        sandbox = Sandbox(cgroups=True)
        if (problem := sandbox.check()) is not None:
            raise SandboxUnavailable(problem)
        log.info("jobs' limits are enforced by %s", sandbox.enforcement())
        return LocalBackend(
            sandbox, config.work_root, max_concurrency, disk_mb=config.disk_quota_mb
        )
    if name == "ray":
        from remote_exec.gateway.backends.ray_backend import RayBackend

        opts = ray_options or RayOptions()
        return RayBackend(
            max_concurrency,
            opts.address,
            disk_mb=config.disk_quota_mb,
            max_retries=opts.max_retries,
            gpu_resource=opts.gpu_resource,
        )
    raise ValueError(f"unknown backend {name!r} (local or ray)")


def run_gateway(
    host: str,
    port: int,
    token_file: Path,
    backend: str,
    max_concurrency: int,
    *,
    state_dir: Path | None = None,
    max_cpus: int | None = None,
    max_memory_mb: int | None = None,
    disk_quota_mb: int = DEFAULT_DISK_MB,
    keep_finished_hours: float = 24.0,
    max_finished: int = 10_000,
    ray_options: RayOptions | None = None,
) -> int:
    """Serve until interrupted; 2 when the gateway cannot start (token file, backend).

    `max_cpus` and `max_memory_mb` cap what one job may ask for below what the backend has
    (None: no lower cap); `disk_quota_mb` is what a job may write, and as much in its /tmp.
    Finished jobs are kept `keep_finished_hours`, at most `max_finished` of them.
    """
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
    state = state_dir or Path(platformdirs.user_state_dir("gantry")) / "gateway"
    try:
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        config = GatewayConfig(
            tokens=load_tokens(token_file),
            journal_path=state / "jobs.sqlite",
            work_root=state / "work",
            name=f"{host}:{port}",
            limits=Limits(max_cpus=max_cpus, max_memory_mb=max_memory_mb),
            disk_quota_mb=disk_quota_mb,
            drain_file=state / "drain",
            retention=Retention(
                keep_finished_s=keep_finished_hours * 3600, max_finished=max_finished
            ),
        )
        chosen = make_backend(backend, config, max_concurrency, ray_options)
    except (TokenFileError, ValueError, ImportError, RuntimeError) as exc:
        log.error("gateway cannot start: %s", exc)
        return 2
    if host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("serving plain HTTP on %s: put TLS in front (a reverse proxy)", host)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, chosen),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    )
    server.run()
    return 0
