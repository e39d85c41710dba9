"""The gateway's HTTP API (v1): submit, inspect, stream, cancel; bearer-token auth on every route.

Status codes: 401 no or unknown token, 403 a token without the scope the route needs, 404 a job
this token does not own (other tokens' jobs are invisible), 400 an invalid spec, 413 a body over
the limit (refused while reading, never buffered whole), 429 too many unfinished jobs for this
token (with Retry-After), 503 the backend refused the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from remote_exec.gateway.auth import bearer, find_token
from remote_exec.gateway.backends import Backend, Capacity
from remote_exec.gateway.config import GatewayConfig, Scope, Token
from remote_exec.gateway.registry import LOST, JobRecord, Registry, TooBusy
from remote_exec.gateway.status_page import status_routes
from remote_exec.gateway.validate import SpecError, parse_submission

log = logging.getLogger(__name__)

# A silent job still wakes its log streamers this often, to notice a client that went away.
_LOG_WAKE_S = 15.0


class _HTTPError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        body: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}
        self.body = body or {}


def _version() -> str:
    try:
        return importlib.metadata.version("gantry-lsp")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def create_app(config: GatewayConfig, backend: Backend) -> Starlette:
    registry = Registry(config.journal_path, config.log_retention_bytes, config.retention)
    version = _version()

    def authorize(request: Request, scope: Scope) -> Token:
        presented = bearer(request)
        token = find_token(config.tokens, presented) if presented else None
        if token is None:
            raise _HTTPError(
                401,
                "missing or invalid bearer token",
                {"WWW-Authenticate": 'Bearer realm="gantry"'},
            )
        granted = token.scopes | ({Scope.READ} if Scope.SUBMIT in token.scopes else set())
        if scope not in granted:
            raise _HTTPError(403, f"token lacks the {scope} scope")
        return token

    def owned_job(request: Request, token: Token) -> JobRecord:
        job = registry.get(token.id, request.path_params["job_id"])
        if job is None:
            raise _HTTPError(404, "no such job")
        if job.state == LOST:  # 404: what clients read as "resubmit the key"; the body says why
            raise _HTTPError(404, f"job lost: {job.reason}", body=job.to_json())
        return job

    async def submit(request: Request) -> Response:
        token = authorize(request, Scope.SUBMIT)
        body = await _read_limited(request, config.limits.max_body_bytes)
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:  # bad UTF-8 and deep nesting too
            raise _HTTPError(400, "body is not JSON") from exc
        try:
            key, spec = parse_submission(document, config)
        except SpecError as exc:
            raise _HTTPError(400, str(exc)) from exc
        if (reason := backend.check(spec)) is not None:
            raise _HTTPError(400, reason)
        try:
            job, new = await run_in_threadpool(
                registry.create, token.id, key, spec, config.limits.max_active_per_token
            )
        except TooBusy as exc:
            raise _HTTPError(
                429,
                f"at most {config.limits.max_active_per_token} unfinished jobs per token",
                {"Retry-After": str(config.retry_after_s)},
            ) from exc
        if not new:
            return JSONResponse(job.to_json(), status_code=200)
        if config.draining:  # after create: a known key is still answered while draining
            await run_in_threadpool(registry.forget, job)
            raise _HTTPError(503, "draining: no new jobs", {"X-Gantry-Draining": "1"})
        try:
            backend.submit(job.id, spec, registry)
        except Exception as exc:
            log.exception("backend %s refused job %s", backend.name, job.id)
            await run_in_threadpool(registry.forget, job)
            raise _HTTPError(503, f"backend unavailable: {exc}") from exc
        log.info("job %s accepted (key %s, token %s)", job.id, key, token.id)
        return JSONResponse(job.to_json(), status_code=201)

    async def get_job(request: Request) -> Response:
        job = owned_job(request, authorize(request, Scope.READ))
        return JSONResponse(job.to_json())

    async def cancel_job(request: Request) -> Response:
        job = owned_job(request, authorize(request, Scope.SUBMIT))
        if registry.request_cancel(job):
            backend.cancel(job.id)
        return JSONResponse(job.to_json())

    async def job_logs(request: Request) -> Response:
        job = owned_job(request, authorize(request, Scope.READ))
        try:
            offset = max(0, int(request.query_params.get("offset", "0")))
        except ValueError as exc:
            raise _HTTPError(400, "offset: a byte offset") from exc

        async def stream() -> AsyncIterator[bytes]:
            nonlocal offset
            with registry.watch(job) as changed:
                while True:
                    changed.clear()
                    chunk, offset, done = registry.read_log(job, offset)
                    if chunk:
                        yield chunk
                    if done:
                        return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), _LOG_WAKE_S)

        return StreamingResponse(stream(), media_type="text/plain; charset=utf-8")

    async def health(request: Request) -> Response:
        authorize(request, Scope.READ)
        cap = backend.capacity()
        return JSONResponse(
            {
                "backend": backend.name,
                "capacity": {
                    "max_concurrency": cap.max_concurrency,
                    "gpus": cap.gpus,
                    "cpus": cap.cpus,
                    "memory_mb": cap.memory_mb,
                },
                # What one job may ask for (None: no bound known) and how it is held to it.
                "limits": {
                    "cpus": _least(config.limits.max_cpus, cap.cpus),
                    "memory_mb": _least(config.limits.max_memory_mb, cap.memory_mb),
                    "disk_mb": config.disk_quota_mb,
                },
                "enforcement": cap.enforcement,
                **registry.counts(),
                # For clients routing between gateways: what a new job would find.
                "free": _free(cap, *registry.in_use()),
                "draining": config.draining,
                "version": version,
            }
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _HTTPError)
        return JSONResponse(
            {**exc.body, "error": exc.message}, status_code=exc.status, headers=exc.headers
        )

    def resume_queued() -> None:
        """Jobs a previous life had queued (journaled with their spec) go to the backend."""
        if registry.lost_at_start:
            log.warning(
                "%d jobs were running when the gateway stopped: reported lost",
                registry.lost_at_start,
            )
        if queued := registry.queued():
            log.warning("%d queued jobs resumed from the journal", len(queued))
        for job in queued:
            assert job.spec is not None
            try:
                backend.submit(job.id, job.spec, registry)
            except Exception as exc:
                log.exception("backend %s refused queued job %s", backend.name, job.id)
                registry.lose(job.id, f"the backend refused it after a restart: {exc}")

    async def prune_forever() -> None:
        """Finished jobs age out even while nothing finishes (finishing prunes too)."""
        while True:
            await asyncio.sleep(config.prune_every_s)
            try:
                if gone := await run_in_threadpool(registry.prune):
                    log.info("forgot %d finished jobs past their retention", gone)
            except Exception:
                log.exception("pruning finished jobs failed")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        registry.bind_loop(asyncio.get_running_loop())
        await run_in_threadpool(resume_queued)
        pruner = asyncio.create_task(prune_forever())
        try:
            yield
        finally:
            pruner.cancel()
            await run_in_threadpool(backend.close)
            registry.close()

    app = Starlette(
        routes=[
            Route("/v1/jobs", submit, methods=["POST"]),
            Route("/v1/jobs/{job_id}", get_job, methods=["GET"]),
            Route("/v1/jobs/{job_id}", cancel_job, methods=["DELETE"]),
            Route("/v1/jobs/{job_id}/logs", job_logs, methods=["GET"]),
            Route("/v1/health", health, methods=["GET"]),
            *status_routes(config, backend, registry, version),
        ],
        exception_handlers={_HTTPError: on_http_error},
        lifespan=lifespan,
    )
    app.state.registry = registry
    return app


def _free(cap: Capacity, jobs: int, gpus: int) -> dict[str, int]:
    return {"slots": max(0, cap.max_concurrency - jobs), "gpus": max(0, cap.gpus - gpus)}


def _least(*bounds: int | None) -> int | None:
    return min((b for b in bounds if b is not None), default=None)


async def _read_limited(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it exceeds `limit` (declared or actual)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _HTTPError(413, f"body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _HTTPError(413, f"body over {limit} bytes")
    return bytes(body)
