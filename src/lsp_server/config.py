"""Typed settings: defaults < [tool.gantry] in pyproject.toml or gantry.toml < editor settings.

Invalid values never stop the server: each one falls back to its default and is reported as a
plain sentence the server shows to the user.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal

import attrs

from lsp_server.typed_settings import normalise_keys, structure

Level = Literal["error", "warning", "info", "hint"]
CLIENT_ONLY = frozenset({"server", "trace"})
"""Keys of the editor's `gantry` section that belong to the editor extension, not to us."""
LEVELS: tuple[str, ...] = typing.get_args(Level)


@attrs.frozen
class RuffSettings:
    enabled: bool = True
    path: str | None = None
    """The ruff binary; by default the one installed with Gantry, else `ruff` on PATH."""
    select: list[str] = attrs.Factory(list)
    """Replaces the project's rule selection when not empty."""
    extend_select: list[str] = attrs.Factory(list)
    ignore: list[str] = attrs.Factory(list)


@attrs.frozen
class IndexSettings:
    enabled: bool = True
    exclude: list[str] = attrs.Factory(list)
    """gitignore-style patterns skipped on top of .gitignore."""


@attrs.frozen
class EndpointSettings:
    """A Messages-API endpoint. Its key comes from an environment variable or a file."""

    name: str
    base_url: str
    model: str
    api_key_env: str | None = None
    api_key_file: str | None = None
    privacy: Literal["self-hosted", "cloud"] = "self-hosted"
    connect_timeout_s: float = attrs.field(default=3.0, validator=attrs.validators.gt(0))
    read_timeout_s: float = attrs.field(default=60.0, validator=attrs.validators.gt(0))
    max_tokens: int = attrs.field(default=4096, validator=attrs.validators.gt(0))


@attrs.frozen
class InferenceSettings:
    endpoints: list[EndpointSettings] = attrs.Factory(list)
    """Tried in order."""
    privacy: Literal["self-hosted-only", "any"] = "self-hosted-only"
    """Whether code may be sent to `cloud` endpoints at all."""


@attrs.frozen
class GatewaySettings:
    url: str
    name: str = "gateway"
    token_env: str | None = "GANTRY_GATEWAY_TOKEN"
    token_file: str | None = None
    connect_timeout_s: float = attrs.field(default=3.0, validator=attrs.validators.gt(0))
    read_timeout_s: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))


@attrs.frozen
class ExecutionSettings:
    gateway: GatewaySettings | None = None
    local_fallback: bool = True
    """Run CPU jobs in the local sandbox while the gateway is down or busy."""
    unsandboxed: bool = False
    """Run local jobs without bubblewrap. Announced every time it is used."""
    queue: str | None = None
    """The durable job queue file; by default one per workspace in the user data directory."""
    max_concurrency: int = attrs.field(default=2, validator=attrs.validators.gt(0))


@attrs.frozen
class Settings:
    store: str | None = None
    """The context store file; by default one per workspace in the user cache directory."""
    max_file_size_kb: int = attrs.field(default=1024, validator=attrs.validators.gt(0))
    ruff: RuffSettings = RuffSettings()
    index: IndexSettings = IndexSettings()
    severity: dict[str, Level] = attrs.Factory(dict)
    """Rule code or prefix -> level; the longest matching prefix wins."""
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    inference: InferenceSettings = InferenceSettings()
    execution: ExecutionSettings = ExecutionSettings()

    @property
    def max_file_size(self) -> int:
        return self.max_file_size_kb * 1024


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_project_settings(root: Path | None, problems: list[str]) -> dict[str, Any]:
    """The raw [tool.gantry] table of pyproject.toml, or gantry.toml, at the workspace root."""
    if root is None:
        return {}
    for name, table in (("gantry.toml", ()), ("pyproject.toml", ("tool", "gantry"))):
        file = root / name
        if not file.is_file():
            continue
        try:
            data: Any = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            problems.append(f"{file}: cannot be read ({exc}); its settings are ignored")
            continue
        for part in table:
            data = data.get(part, {}) if isinstance(data, dict) else {}
        if data:
            return data
    return {}


def load_settings(root: Path | None, *editor_layers: Any) -> tuple[Settings, list[str]]:
    """Settings for a workspace, and the problems found on the way (already defaulted)."""
    problems: list[str] = []
    merged = normalise_keys(read_project_settings(root, problems), Settings)
    for layer in editor_layers:
        if isinstance(layer, dict):
            layer = {k: v for k, v in layer.items() if k not in CLIENT_ONLY}
            merged = _deep_merge(merged, normalise_keys(layer, Settings))
        elif layer is not None:
            problems.append(f"editor settings: expected an object, got {layer!r}; ignored")
    return structure(Settings, merged, "", problems), problems


def _workspace_file(root: Path | None, configured: str | None, base: str, folder: str) -> Path:
    """A configured path (relative to the workspace), else one file per workspace under `base`."""
    if configured:
        path = Path(configured).expanduser()
        return path if path.is_absolute() or root is None else root / path
    key = str(root.resolve()) if root else "no-workspace"
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(key).name or "root")[:40]
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Path(base) / folder / f"{slug}-{digest}.db"


def store_path(root: Path | None, settings: Settings) -> Path:
    """Where the workspace's context store lives: a cache, rebuilt if lost (verdicts aside)."""
    from platformdirs import user_cache_dir

    return _workspace_file(root, settings.store, user_cache_dir("gantry"), "stores")


def queue_path(root: Path | None, settings: Settings) -> Path:
    """Where the workspace's durable job queue lives: data, not cache — jobs must survive."""
    from platformdirs import user_data_dir

    return _workspace_file(root, settings.execution.queue, user_data_dir("gantry"), "queues")


def severity_for(rule: str, settings: Settings, default: Level) -> Level:
    best = ""
    for prefix in settings.severity:
        if rule.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return settings.severity[best] if best else default
