"""Gateway settings and the tokens it accepts."""

from __future__ import annotations

import enum
import hashlib
import logging
import stat
from pathlib import Path

import attrs

from remote_exec.sandbox import DEFAULT_DISK_MB

log = logging.getLogger(__name__)


class Scope(enum.StrEnum):
    READ = "read"
    """Health, job status and logs."""
    SUBMIT = "submit"
    """Submit and cancel jobs (implies read)."""
    ADMIN = "admin"
    """See every token's jobs on the status page (others see their own and the totals)."""


BARE_TOKEN_SCOPES = frozenset({Scope.READ, Scope.SUBMIT})


@attrs.frozen
class Token:
    secret: str = attrs.field(repr=False)
    scopes: frozenset[Scope]

    @property
    def id(self) -> str:
        """A stable, non-secret name: jobs and idempotency keys are scoped by it."""
        return hashlib.sha256(self.secret.encode()).hexdigest()[:16]


class TokenFileError(Exception):
    pass


# Names a client may set in a job's environment; everything else is refused (400).
DEFAULT_ENV_ALLOW = frozenset(
    {
        "COVERAGE_FILE",
        "COVERAGE_PROCESS_START",
        "HYPOTHESIS_PROFILE",
        "LANG",
        "LC_ALL",
        "MKL_NUM_THREADS",
        "OMP_NUM_THREADS",
        "PYTEST_ADDOPTS",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONHASHSEED",
        "PYTHONPATH",
        "PYTHONUNBUFFERED",
        "TZ",
    }
)


_optional_positive = attrs.validators.optional(attrs.validators.gt(0))


@attrs.frozen
class Limits:
    """Bounds on what one request may ask for; anything outside is a 400 (or 413 for size)."""

    max_body_bytes: int = 32 * 1024 * 1024
    max_files: int = 2000
    max_argv: int = 256
    max_arg_chars: int = 8192
    max_env: int = 64
    max_env_value_chars: int = 8192
    max_artifacts: int = 100
    min_timeout_s: float = 0.1
    max_timeout_s: float = 3600.0
    max_cpus: int | None = attrs.field(default=None, validator=_optional_positive)
    """None: as many as the backend can give one job (for `local`, the host's CPUs)."""
    max_gpus: int = 8
    min_memory_mb: int = 64
    max_memory_mb: int | None = attrs.field(default=None, validator=_optional_positive)
    """None: as much as the backend can give one job (for `local`, the host's RAM)."""
    max_active_per_token: int = 8
    """Queued + running jobs one token may have; more is a 429."""


@attrs.frozen
class Retention:
    """How much of the past a gateway keeps (it should run for weeks in bounded memory)."""

    keep_finished_s: float = attrs.field(default=24 * 3600.0, validator=attrs.validators.gt(0))
    """Finished jobs older than this are forgotten: resubmitting their key runs them again."""
    max_finished: int = attrs.field(default=10_000, validator=attrs.validators.gt(0))
    """At most this many finished jobs are kept (the newest)."""
    finished_log_bytes: int = attrs.field(
        default=64 * 1024 * 1024, validator=attrs.validators.ge(0)
    )
    """Live output kept for finished jobs' logs endpoint, in all (oldest dropped first)."""


@attrs.frozen
class GatewayConfig:
    tokens: tuple[Token, ...] = attrs.field(repr=False)
    journal_path: Path
    """SQLite journal of jobs: lets a restarted gateway answer idempotent resubmissions."""
    work_root: Path
    """Where the local backend unpacks bundles (one private directory per job)."""
    name: str = "gateway"
    limits: Limits = Limits()
    env_allow: frozenset[str] = DEFAULT_ENV_ALLOW
    retry_after_s: int = 5
    log_retention_bytes: int = 1024 * 1024
    """Live output kept per job for the logs endpoint (oldest dropped first)."""
    disk_quota_mb: int = attrs.field(default=DEFAULT_DISK_MB, validator=attrs.validators.gt(0))
    """What a job may write in its directory, and as much in its /tmp (each a tmpfs: RAM)."""
    retention: Retention = Retention()
    prune_every_s: float = 60.0
    """How often finished jobs past `retention` are forgotten even when none finishes."""
    drain_file: Path | None = None
    """While this file exists the gateway is draining: it takes no new job (503), finishes
    the ones it has, and says so in /v1/health, so that clients send their work elsewhere."""

    @property
    def draining(self) -> bool:
        return self.drain_file is not None and self.drain_file.exists()


def load_tokens(path: Path) -> tuple[Token, ...]:
    """Read a token file: one token per line, optionally followed by scopes (`read`, `submit`).

    A bare token may read and submit; `admin` is given only by name. Blank lines and `#` comments are ignored. The file must exist,
    hold at least one token and not be readable by everyone (as ssh treats private keys).
    """
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TokenFileError(f"cannot read token file {path}: {exc.strerror}") from exc
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        raise TokenFileError(f"token file {path} is accessible by everyone; chmod 600 it")
    if mode & stat.S_IRWXG:
        log.warning("token file %s is accessible by its group", path)
    tokens = []
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        secret, *names = fields
        if len(secret) < 16:
            raise TokenFileError(f"{path}:{lineno}: token shorter than 16 characters")
        try:
            scopes = frozenset(Scope(n) for n in names) if names else BARE_TOKEN_SCOPES
        except ValueError as exc:
            raise TokenFileError(f"{path}:{lineno}: {exc}") from exc
        tokens.append(Token(secret, scopes))
    if not tokens:
        raise TokenFileError(f"token file {path} holds no token")
    return tuple(tokens)
