"""Reading a secret that settings only name: an environment variable, else a file.

Settings travel with repositories, so they never hold a token or key, only where to find it;
every part of Gantry reads it here, at the last moment, and never keeps it in a record.
"""

from __future__ import annotations

import os
from pathlib import Path


class SecretMissing(ValueError):
    """A named file cannot be read, or holds nothing."""


def read_secret(env: str | None, file: str | None, what: str) -> str | None:
    """The secret in the environment variable `env`, else in `file`; None when neither names
    one. `what` says whose secret it is in the error (never the secret)."""
    if env and (value := os.environ.get(env, "").strip()):
        return value
    if not file:
        return None
    path = Path(file).expanduser()
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretMissing(f"{what}: cannot read {path}: {exc.strerror}") from exc
    if not value:
        raise SecretMissing(f"{what}: {path} is empty")
    return value
