"""Typed settings: defaults < [tool.gantry] in pyproject.toml or gantry.toml < editor settings.

Invalid values never stop the server: each one falls back to its default and is reported as a
plain sentence the server shows to the user.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

import attrs

Level = Literal["error", "warning", "info", "hint"]
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
class Settings:
    store: str | None = None
    """The context store file; by default one per workspace in the user cache directory."""
    max_file_size_kb: int = attrs.field(default=1024, validator=attrs.validators.gt(0))
    ruff: RuffSettings = RuffSettings()
    index: IndexSettings = IndexSettings()
    severity: dict[str, Level] = attrs.Factory(dict)
    """Rule code or prefix -> level; the longest matching prefix wins."""
    log_level: Literal["debug", "info", "warning", "error"] = "warning"

    @property
    def max_file_size(self) -> int:
        return self.max_file_size_kb * 1024


def _snake(key: str) -> str:
    """Editors speak camelCase (maxFileSizeKb), TOML speaks snake or kebab case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).replace("-", "_").lower()


def _fits(value: Any, hint: Any) -> bool:
    """Strict shape check: cattrs alone would turn "E" into ["E"] and "false" into True."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in args)
    if origin is list:
        return isinstance(value, list) and all(_fits(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            _fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items()
        )
    if hint is type(None):
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint)


def _structure(cls: type, data: Any, path: str, problems: list[str]) -> Any:
    """Build `cls` from `data` field by field: a bad value costs only that field."""
    if not isinstance(data, dict):
        problems.append(f"{path or 'gantry'}: expected a table, got {data!r}; using defaults")
        return cls()
    fields = {f.name: f for f in attrs.fields(cls)}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = _snake(str(raw_key))
        where = f"{path}.{raw_key}" if path else str(raw_key)
        if key not in fields:
            problems.append(f"{where}: unknown setting, ignored")
            continue
        hint = hints[key]
        if attrs.has(hint):
            values[key] = _structure(hint, value, where, problems)
            continue
        try:
            if not _fits(value, hint):
                raise TypeError(value)
            if (validator := fields[key].validator) is not None:
                validator(None, fields[key], value)
            values[key] = value
        except (TypeError, ValueError):
            problems.append(f"{where}: invalid value {value!r}; using the default")
    return cls(**values)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _normalise_keys(data: Any, cls: type | None = None) -> Any:
    """snake_case the keys of settings tables (not of free-form maps such as `severity`)."""
    cls = cls or Settings
    if not isinstance(data, dict):
        return data
    hints = typing.get_type_hints(cls)
    out = {}
    for raw_key, value in data.items():
        key = _snake(str(raw_key))
        if value is None:
            continue
        hint = hints.get(key)
        out[key] = _normalise_keys(value, hint) if hint is not None and attrs.has(hint) else value
    return out


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
    merged = _normalise_keys(read_project_settings(root, problems))
    for layer in editor_layers:
        if isinstance(layer, dict):
            merged = _deep_merge(merged, _normalise_keys(layer))
        elif layer is not None:
            problems.append(f"editor settings: expected an object, got {layer!r}; ignored")
    return _structure(Settings, merged, "", problems), problems


def store_path(root: Path | None, settings: Settings) -> Path:
    """Where the workspace's context store lives."""
    if settings.store:
        path = Path(settings.store).expanduser()
        return path if path.is_absolute() or root is None else root / path
    from platformdirs import user_cache_dir

    key = str(root.resolve()) if root else "no-workspace"
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(key).name or "root")[:40]
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Path(user_cache_dir("gantry")) / "stores" / f"{slug}-{digest}.db"


def severity_for(rule: str, settings: Settings, default: Level) -> Level:
    best = ""
    for prefix in settings.severity:
        if rule.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return settings.severity[best] if best else default
