"""The engine behind `gantry check`: a fresh server reviews the paths as `ruff check PATHS` would
read them (ruff's exclusions and the project's, .gitignore), in a few ruff runs over files on
disk, and publishes one diagnostics notification per file; this client collects them. The
command (its arguments, the report, the exit codes) is lsp_server/cli/check.py.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from lsp_server.config import Settings
from lsp_server.headless.client import CheckSession, ServerError, normalise_uri
from lsp_server.headless.report import Reported
from lsp_server.headless.server_process import serve_command

if TYPE_CHECKING:
    from lsp_server.review.local import Selection


AI_UNFINISHED = "the AI review had not finished when --wait ran out"


@attrs.frozen
class Analysis:
    findings: tuple[Reported, ...]
    files: int
    """Files the server was to review, analysed or not."""
    skipped: tuple[tuple[Path, str], ...] = ()
    not_analysed: tuple[Path, ...] = ()
    ai_incomplete: tuple[tuple[Path, str], ...] = ()
    """Files whose AI review did not finish, and why."""


def relative_path(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def _uri(path: Path) -> str:
    return normalise_uri(path.as_uri())


async def analyse(
    workspace: Path,
    paths: list[Path],
    wait: float,
    settings: Settings,
    root: Path,
    *,
    fingerprints: bool = True,
    trust_workspace: bool = False,
    ai: bool = False,
    options: dict[str, Any] | None = None,
    server: subprocess.Popen[bytes] | None = None,
) -> Analysis:
    """Have a fresh server (`server`, when one was started for it already) review `paths`
    (with `ai`, by the model too) and collect what it publishes within `wait` s; findings
    name files relative to `root`. `options` are the server's initializationOptions (the
    command line's settings)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    session = CheckSession(workspace, serve_command(trust_workspace), options, server)
    answer = None
    try:
        if await session.start(timeout=wait):
            remaining = max(0.0, deadline - loop.time())
            answer = await session.review_paths(paths, remaining, fingerprints=fingerprints, ai=ai)
    except ServerError as exc:
        tail = "\n".join(session.client.stderr_tail)
        raise ServerError(f"{exc}\n{tail}" if tail else str(exc)) from exc
    finally:
        await session.close()
    published = session.client.diagnostics
    missing: tuple[Path, ...] = ()
    unfinished: tuple[tuple[Path, str], ...] = ()
    if answer is not None:
        files = [Path(path) for path in answer["files"]]
        skipped = tuple((Path(item["path"]), item["reason"]) for item in answer["skipped"])
        unfinished = tuple(
            (Path(item["path"]), item["reason"]) for item in answer.get("aiIncomplete", ())
        )
    else:  # --wait ran out: what arrived, and which of the files that were due did not
        selection = await asyncio.to_thread(_selection, workspace, paths, settings)
        files, skipped = list(selection.files), selection.skipped
        missing = tuple(path for path in files if _uri(path) not in published)
        if ai:  # ruff's findings arrive first: which AI reviews finished is not known
            unfinished = tuple((path, AI_UNFINISHED) for path in files if _uri(path) in published)
    findings: list[Reported] = []
    for path in files:
        if read := published.get(_uri(path)):  # relpath once per file: it is costly
            relative = relative_path(path, root)
            findings.extend(finding.at(relative) for finding in read)
    return Analysis(tuple(findings), len(files), skipped, missing, unfinished)


def _selection(workspace: Path, paths: list[Path], settings: Settings) -> Selection:
    """The files a review of `paths` covers; all of `paths` when ruff cannot say."""
    from lsp_server.review import local, ruff_engine  # only when a check is cut short

    try:
        return local.select_files(workspace, paths, settings)
    except (ruff_engine.RuffUnavailable, ruff_engine.RuffFailed):
        return local.Selection(tuple(paths))
