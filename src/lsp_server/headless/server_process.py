"""Starting the server `gantry check` talks to, before anything else: its imports take half a
second, which then overlap the command's own (settings, asyncio, the client). Standard library
only, so that `gantry check` can start it first thing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

SERVE_COMMAND: tuple[str, ...] = (sys.executable, "-P", "-m", "lsp_server", "serve")
"""The very server an editor runs, from the same interpreter as this command."""
_PROJECT_MARKERS = ("gantry.toml", "pyproject.toml", ".git")


def serve_command(trust_workspace: bool) -> tuple[str, ...]:
    return (*SERVE_COMMAND, "--trust-workspace") if trust_workspace else SERVE_COMMAND


def start(command: Sequence[str], cwd: Path) -> subprocess.Popen[bytes]:
    """The server, running in `cwd`, its stdio piped. Raises OSError if it cannot start."""
    return subprocess.Popen(
        list(command),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a server that will not be needed (the command failed before using it)."""
    process.kill()
    process.wait()
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def project_root(paths: list[str], cwd: Path) -> Path:
    """The workspace the server reviews with: the nearest folder around all PATHS that holds a
    project marker, so `gantry check sub/project` uses that project's settings."""
    common = Path(os.path.commonpath([Path(p).resolve() for p in paths]))
    start_at = common if common.is_dir() else common.parent
    for folder in (start_at, *start_at.parents):
        if any((folder / marker).exists() for marker in _PROJECT_MARKERS):
            return folder
    return cwd
