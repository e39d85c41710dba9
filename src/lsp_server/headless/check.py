"""`gantry check`: review files headless through the real server and report, as CI does.

Exit codes:
  0  nothing at or above --fail-on
  1  at least one finding at or above --fail-on
  2  usage or configuration error (a PATH that does not exist, an unwritable --output), or the
     server could not be started or died
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

import attrs

from lsp_server.analysis.languages import language_for_path
from lsp_server.analysis.workspace_files import iter_source_files, read_source_bytes, skip_sentence
from lsp_server.config import load_settings
from lsp_server.headless.client import SERVE_COMMAND, CheckSession, ServerError
from lsp_server.headless.findings import Finding, Report, finding_from_diagnostic, level_rank
from lsp_server.headless.reporters import render
from lsp_server.headless.reporters.summary import summary_line

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3
REVIEWED_LANGUAGES = frozenset({"python"})
"""Languages the server reviews; other source files are not sent."""


class UsageError(Exception):
    pass


@attrs.frozen
class Document:
    path: Path
    relative: str
    language: str
    text: str

    @property
    def uri(self) -> str:
        return self.path.as_uri()


@attrs.frozen
class Analysis:
    findings: tuple[Finding, ...]
    not_analysed: tuple[str, ...]


def _relative(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def _candidate_files(paths: list[str], exclude: list[str]) -> list[Path]:
    """PATHS expanded to source files: a directory by the workspace rules (.gitignore, exclude),
    a file named outright as it is."""
    missing = [path for path in paths if not Path(path).exists()]
    if missing:
        raise UsageError(f"no such file or directory: {', '.join(missing)}")
    found: dict[Path, None] = {}  # ordered and without duplicates
    for raw in paths:
        path = Path(raw).resolve()
        if path.is_dir():
            found.update((file.resolve(), None) for file in iter_source_files(path, exclude))
        elif language_for_path(path):
            found[path] = None
    return list(found)


def collect_documents(
    paths: list[str], root: Path, exclude: list[str], max_bytes: int
) -> tuple[list[Document], list[tuple[str, str]]]:
    """The documents to send, and (path, reason) for the files that cannot be read."""
    documents, skipped = [], []
    for path in _candidate_files(paths, exclude):
        language = language_for_path(path)
        if language not in REVIEWED_LANGUAGES:
            continue
        relative = _relative(path, root)
        try:
            data, skip = read_source_bytes(path, max_bytes)
        except OSError as exc:
            skipped.append((relative, exc.strerror or str(exc)))
            continue
        if data is None:
            skipped.append((relative, skip_sentence(skip, max_bytes)))
        else:
            # Decoded as the server's own reader does, so positions agree.
            text = data.decode("utf-8").removeprefix("\ufeff")
            documents.append(Document(path, relative, language, text))
    return documents, skipped


async def analyse(
    workspace: Path, documents: list[Document], wait: float, *, trust_workspace: bool = False
) -> Analysis:
    """Open every document in a fresh server and collect what it publishes within `wait` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    trust = ("--trust-workspace",) if trust_workspace else ()
    session = CheckSession(workspace, (*SERVE_COMMAND, *trust))
    try:
        if not await session.start(timeout=wait):
            return Analysis((), tuple(sorted(doc.relative for doc in documents)))
        by_uri = {session.open(doc.uri, doc.language, doc.text): doc for doc in documents}
        missing = await session.wait_until_analysed(
            set(by_uri), timeout=max(0.0, deadline - loop.time())
        )
    except ServerError as exc:
        tail = "\n".join(session.client.stderr_tail)
        raise ServerError(f"{exc}\n{tail}" if tail else str(exc)) from exc
    finally:
        await session.close()
    findings = tuple(
        finding_from_diagnostic(doc.relative, diagnostic)
        for uri, doc in by_uri.items()
        for diagnostic in session.client.diagnostics.get(uri, ())
    )
    return Analysis(findings, tuple(sorted(by_uri[uri].relative for uri in missing)))


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
        level_rank(finding.level) <= level_rank(fail_on) for finding in report.findings
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
        documents, skipped = collect_documents(
            args.paths, root, settings.index.exclude, settings.max_file_size
        )
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    for relative, reason in skipped:
        print(f"gantry: skipped {relative}: {reason}", file=sys.stderr)

    analysis = Analysis((), ())
    if documents:
        try:
            analysis = asyncio.run(
                analyse(workspace, documents, args.wait, trust_workspace=args.trust_workspace)
            )
        except ServerError as exc:
            _error(f"the Gantry server failed: {exc}")
            return EXIT_USAGE
    report = Report(analysis.findings, len(documents), analysis.not_analysed)
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
