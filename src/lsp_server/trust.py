"""Whose settings are trusted.

A repository is untrusted input. Its settings (`[tool.gantry]`, `gantry.toml`) may tune
behaviour, but the keys that choose what runs, where data goes, which credentials are read,
which files are written or how strong the isolation is are honoured only from the user's own
configuration, or from a workspace the user trusted with `gantry trust` (as direnv's `allow`).

Settings fields say which kind they are in their attrs metadata (see `USER_ONLY` and
`WORKSPACE_PATH`); this module withholds them from an untrusted workspace's table and keeps the
record of trusted workspaces.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import typing
from pathlib import Path
from typing import Any, Literal

import attrs

from lsp_server.typed_settings import attrs_class

USER_ONLY = {"trust": "user"}
"""Metadata of a field a workspace may only set to its default (the safe value)."""
WORKSPACE_PATH = {"trust": "workspace-path"}
"""Metadata of a file path a workspace may set only inside itself."""

# SQLite and the verdict journal write beside a store or queue file: none may lead elsewhere.
_COMPANIONS = ("", "-wal", "-shm", "-journal", ".verdicts.jsonl")

TrustState = Literal["trusted", "changed", "untrusted"]


def withhold(table: dict[str, Any], cls: type, root: Path) -> tuple[dict[str, Any], list[str]]:
    """The part of a normalised workspace table an untrusted workspace may set, and the dotted
    keys taken out of it."""
    kept: dict[str, Any] = {}
    withheld: list[str] = []
    fields = {f.name: f for f in attrs.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in table.items():
        field = fields.get(key)
        if field is None:
            kept[key] = value  # unknown keys are reported by structure()
            continue
        if not _allowed(field, value, root):
            withheld.append(key)
        elif isinstance(value, dict) and (inner := attrs_class(hints[key])) is not None:
            kept[key], nested = withhold(value, inner, root)
            withheld.extend(f"{key}.{name}" for name in nested)
        else:
            kept[key] = value
    return kept, withheld


def _allowed(field: attrs.Attribute, value: Any, root: Path) -> bool:
    rule = field.metadata.get("trust")
    if rule == "user":
        return value == _default(field)
    if rule == "workspace-path":
        return value is None or _inside(root, value)
    return True


def _default(field: attrs.Attribute) -> Any:
    default = field.default
    return default.factory() if isinstance(default, attrs.Factory) else default  # type: ignore[arg-type]


def _inside(root: Path, value: object) -> bool:
    """Whether a configured path stays inside the workspace, symbolic links followed."""
    if not isinstance(value, str):
        return True  # not a path at all: structure() reports it
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = root / path
    try:
        path.parent.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return False
    return not any(path.with_name(path.name + suffix).is_symlink() for suffix in _COMPANIONS)


@attrs.frozen
class TrustStore:
    """The user's record of trusted workspaces: settings file -> digest of the settings it held
    when trusted. The digest covers the Gantry table only, so editing the rest of a
    pyproject.toml keeps the trust while any change to Gantry's settings needs trusting again."""

    path: Path

    @classmethod
    def default(cls) -> TrustStore:
        from platformdirs import user_config_dir

        return cls(Path(user_config_dir("gantry")) / "trusted-workspaces.json")

    def state(self, source: Path, table: dict[str, Any]) -> TrustState:
        recorded = self._read().get(str(source.resolve()))
        if recorded is None:
            return "untrusted"
        return "trusted" if recorded == digest(table) else "changed"

    def trust(self, source: Path, table: dict[str, Any]) -> None:
        records = self._read()
        records[str(source.resolve())] = digest(table)
        self._write(records)

    def revoke(self, source: Path) -> bool:
        records = self._read()
        if records.pop(str(source.resolve()), None) is None:
            return False
        self._write(records)
        return True

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # missing or damaged: nothing is trusted, which is the safe reading
        return (
            {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}
        )

    def _write(self, records: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Atomic and private: a torn or world-writable record would decide what runs.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".trusted-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(records, file, indent=2, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def digest(table: dict[str, Any]) -> str:
    canonical = json.dumps(table, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
