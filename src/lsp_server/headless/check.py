"""`gantry check`: review files headless through the real server and report, as CI does.

The server reviews the paths as `ruff check PATHS` would read them (ruff's exclusions and the
project's, .gitignore), in a few ruff runs over files on disk, and publishes one diagnostics
notification per file; this client collects them.

Exit codes:
  0  nothing at or above --fail-on
  1  at least one finding at or above --fail-on
  2  usage or configuration error (a PATH that does not exist, an unwritable --output), nothing
     to check (no Python file under the PATHs, or every one skipped), or the server could not
     be started, failed or died
  3  analysis incomplete: --wait ran out before every file was analysed (the report still lists
     what arrived, and stderr names the files that were not analysed)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from lsp_server.config import Settings, load_settings
from lsp_server.headless.client import SERVE_COMMAND, CheckSession, ServerError, normalise_uri
from lsp_server.headless.report import Report, Reported, level_rank, reported
from lsp_server.headless.reporters import render
from lsp_server.headless.reporters.summary import summary_line

if TYPE_CHECKING:
    from lsp_server.review.local import Selection

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3
_FINGERPRINTED = frozenset({"json", "sarif"})
"""The formats that show fingerprints: the server computes them only for these (and to leave
out dismissed findings)."""


class UsageError(Exception):
    pass


@attrs.frozen
class Analysis:
    findings: tuple[Reported, ...]
    files: int
    """Files the server was to review, analysed or not."""
    skipped: tuple[tuple[Path, str], ...] = ()
    not_analysed: tuple[Path, ...] = ()


def _relative(path: Path, root: Path) -> str:
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
) -> Analysis:
    """Have a fresh server review `paths` and collect what it publishes within `wait` s;
    findings name files relative to `root`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    trust = ("--trust-workspace",) if trust_workspace else ()
    session = CheckSession(workspace, (*SERVE_COMMAND, *trust))
    answer = None
    try:
        if await session.start(timeout=wait):
            remaining = max(0.0, deadline - loop.time())
            answer = await session.review_paths(paths, remaining, fingerprints=fingerprints)
    except ServerError as exc:
        tail = "\n".join(session.client.stderr_tail)
        raise ServerError(f"{exc}\n{tail}" if tail else str(exc)) from exc
    finally:
        await session.close()
    published = session.client.diagnostics
    missing: tuple[Path, ...] = ()
    if answer is not None:
        files = [Path(path) for path in answer["files"]]
        skipped = tuple((Path(item["path"]), item["reason"]) for item in answer["skipped"])
    else:  # --wait ran out: what arrived, and which of the files that were due did not
        selection = await asyncio.to_thread(_selection, workspace, paths, settings)
        files, skipped = list(selection.files), selection.skipped
        missing = tuple(path for path in files if _uri(path) not in published)
    findings: list[Reported] = []
    for path in files:
        if diagnostics := published.get(_uri(path)):  # relpath once per file: it is costly
            relative = _relative(path, root)
            findings.extend(reported(relative, diagnostic) for diagnostic in diagnostics)
    return Analysis(tuple(findings), len(files), skipped, missing)


def _selection(workspace: Path, paths: list[Path], settings: Settings) -> Selection:
    """The files a review of `paths` covers; all of `paths` when ruff cannot say."""
    from lsp_server.review import local, ruff_engine  # only when a check is cut short

    try:
        return local.select_files(workspace, paths, settings)
    except (ruff_engine.RuffUnavailable, ruff_engine.RuffFailed):
        return local.Selection(tuple(paths))


_PROJECT_MARKERS = ("gantry.toml", "pyproject.toml", ".git")


def project_root(paths: list[str], cwd: Path) -> Path:
    """The workspace the server reviews with: the nearest folder around all PATHS that holds a
    project marker, so `gantry check sub/project` uses that project's settings."""
    common = Path(os.path.commonpath([Path(p).resolve() for p in paths]))
    start = common if common.is_dir() else common.parent
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in _PROJECT_MARKERS):
            return folder
    return cwd


def exit_code(report: Report, fail_on: str) -> int:
    if not report.complete:
        return EXIT_INCOMPLETE
    if fail_on != "never" and any(
        level_rank(item.finding.level) <= level_rank(fail_on) for item in report.findings
    ):
        return EXIT_FINDINGS
    return EXIT_OK


def _check_output(output: str | None) -> None:
    """Fail before the (possibly long) analysis rather than after it."""
    if output is None:
        return
    target = Path(output)
    if target.is_dir():
        raise UsageError(f"--output {output}: is a directory")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"--output {output}: directory {parent} does not exist")
    writable = os.access(target, os.W_OK) if target.exists() else os.access(parent, os.W_OK)
    if not writable:
        raise UsageError(f"--output {output}: not writable")


def _error(message: str) -> None:
    print(f"gantry: error: {message}", file=sys.stderr)


def _write_report(args: argparse.Namespace, report: Report, root: Path) -> None:
    text = render(report, args.format, root)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    # The text report ends with the summary; every other destination gets it on stderr.
    if args.output or args.format != "text":
        print(summary_line(report), file=sys.stderr)


def run_check(args: argparse.Namespace) -> int:
    root = Path.cwd().resolve()  # reports name files relative to where CI runs
    try:
        workspace = project_root(args.paths, root)
    except (OSError, ValueError):
        workspace = root  # missing paths are reported below
    # Problems are the server's to announce, once; what it withholds is said here too, since
    # CI has nobody to read the server's messages.
    loaded = load_settings(workspace, trust_workspace=args.trust_workspace)
    settings = loaded.settings
    if (withheld := loaded.withheld_message()) is not None:
        print(f"gantry: warning: {withheld} In CI, --trust-workspace trusts it.", file=sys.stderr)
    if settings.log_level == "debug":
        logging.basicConfig(stream=sys.stderr, format="%(name)s: %(message)s")
        logging.getLogger("gantry.check").setLevel(logging.DEBUG)
    try:
        if args.wait <= 0:
            raise UsageError(f"--wait must be positive, got {args.wait:g}")
        _check_output(args.output)
        missing = [path for path in args.paths if not Path(path).exists()]
        if missing:
            raise UsageError(f"no such file or directory: {', '.join(missing)}")
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE

    paths = list(dict.fromkeys(Path(path).resolve() for path in args.paths))
    try:
        analysis = asyncio.run(
            analyse(
                workspace,
                paths,
                args.wait,
                settings,
                root,
                fingerprints=args.format in _FINGERPRINTED,
                trust_workspace=args.trust_workspace,
            )
        )
    except ServerError as exc:
        _error(f"the Gantry server failed: {exc}")
        return EXIT_USAGE
    for path, reason in analysis.skipped:
        print(f"gantry: skipped {_relative(path, root)}: {reason}", file=sys.stderr)
    if not analysis.files:
        _error(
            f"nothing was checked: no Python file to review in {' '.join(args.paths)} "
            "(ruff's exclusions, the project's and .gitignore apply)"
        )
        return EXIT_USAGE
    not_analysed = tuple(sorted(_relative(path, root) for path in analysis.not_analysed))
    report = Report(analysis.findings, analysis.files, not_analysed)
    try:
        _write_report(args, report, root)
    except OSError as exc:
        _error(f"cannot write the report: {exc}")
        return EXIT_USAGE
    if not report.complete:
        print(
            f"gantry: analysis incomplete after {args.wait:g} s; not analysed: "
            + ", ".join(report.not_analysed),
            file=sys.stderr,
        )
    return exit_code(report, args.fail_on)
