"""Paths whose content never leaves the machine: environment files, keys, certificates, credential
stores, and the user's own globs (gitignore style, relative to the workspace root).

The inference client refuses a request that carries such a path among its sources; context packs
call ``is_excluded`` so as never to include one in the first place.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from pathlib import PurePath, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pathspec

DEFAULT_EXCLUDE: tuple[str, ...] = (
    ".env*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.crt",
    "*.cer",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "credentials",
    "credentials.json",
    "*.credentials",
    ".git-credentials",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".pypirc",
    ".npmrc",
    ".htpasswd",
    "secrets.yml",
    "secrets.yaml",
    "*.tfstate",
    "*.tfstate.*",
)
"""Always excluded; user globs only add to these."""


def is_excluded(path: str | PurePath, globs: Iterable[str] = ()) -> bool:
    """Whether the file at ``path`` (relative to the workspace root) must stay on this machine.

    ``globs`` are gitignore-style patterns on top of DEFAULT_EXCLUDE. A negation (``!x``) is ignored:
    a workspace's globs may only keep more at home, never let a default through."""
    return _spec(DEFAULT_EXCLUDE).match_file(_relative(path)) or _spec(_plain(globs)).match_file(
        _relative(path)
    )


def excluded(paths: Iterable[str | PurePath], globs: Iterable[str] = ()) -> list[str]:
    """The paths among ``paths`` that ``is_excluded``, as given."""
    globs = _plain(globs)
    return [str(p) for p in paths if is_excluded(p, globs)]


def _plain(globs: Iterable[str]) -> tuple[str, ...]:
    globs = (globs,) if isinstance(globs, str) else globs  # one glob, not its characters
    return tuple(g for g in globs if g.strip() and not g.lstrip().startswith("!"))


def _relative(path: str | PurePath) -> str:
    # Windows separators and absolute paths: patterns without a slash match at any depth anyway.
    posix = PurePosixPath(str(path).replace("\\", "/")).as_posix()
    return posix.lstrip("/")


@functools.lru_cache(maxsize=64)
def _spec(globs: Sequence[str]) -> pathspec.GitIgnoreSpec:
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(globs)
