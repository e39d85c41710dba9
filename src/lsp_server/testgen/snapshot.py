"""An immutable copy of the project a run works on: what its jobs bundle (the Python files and
the test configuration) with the editor's unsaved buffers in place of the files on disk, so
saving or editing during a run changes nothing under it."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Mapping
from pathlib import Path

from .jobs import DRIVER_DIR, project_bundle
from .targets import Target, moved

_FORMATTER_FILES = ("ruff.toml", ".ruff.toml")
"""Read by placement (the project's formatter settings), not by jobs."""


def copy_project(target: Target, texts: Mapping[Path, str], into: Path) -> Target:
    """``target``'s project copied into the empty folder ``into``, with ``texts`` (absolute
    path -> an open document's text) over the files on disk; the target, moved into the copy.
    Raises jobs.BundleTooLarge for a project too large to bundle."""
    for relpath, content in project_bundle(target).items():
        if relpath.startswith(f"{DRIVER_DIR}/"):
            continue
        _write(into / relpath, base64.b64decode(content))
    for name in _FORMATTER_FILES:
        if (target.root / name).is_file() and not (target.root / name).is_symlink():
            shutil.copyfile(target.root / name, into / name)
    for path, text in texts.items():
        if path.suffix == ".py" and path.is_relative_to(target.root):
            _write(into / path.relative_to(target.root), text.encode("utf-8"))
    return moved(target, into)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
