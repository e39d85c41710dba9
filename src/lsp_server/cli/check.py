"""`gantry check [PATH...]`: review files headless through the real server and report, as CI
does. The server reviews the paths as `ruff check PATHS` would read them; the engine is
lsp_server/headless/check.py.

Exit codes:
  0  nothing at or above --fail-on
  1  at least one finding at or above --fail-on
  2  usage or configuration error (a PATH that does not exist, an unwritable --output), nothing
     to check (no Python file under the PATHs, or every one skipped), or the server could not
     be started, failed or died
  3  analysis incomplete: --wait ran out before every file was analysed, or (--ai) a file's AI
     review did not finish (a model that failed or refused, an answer missing from a replayed
     cassette); the report still lists what arrived, and stderr names the files and why

With --ai (flags in cli/check_ai.py, their meaning in headless/ai_options.py) the model reviews the files too. Its answers are cached in
the workspace's store, which an --ai check creates (a plain check creates none): keep the store
between CI runs (the `store` setting, or a persistent cache directory) and unchanged code is
never sent again. A cassette run (--cassette) is hermetic instead: the cassette is its cache,
and it neither reads nor writes the workspace's store or queue.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lsp_server.cli import check_ai
from lsp_server.cli.serve import TRUST_HELP

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing to parse arguments
if TYPE_CHECKING:
    import subprocess

    from lsp_server.config import Settings
    from lsp_server.headless.ai_options import AiRun
    from lsp_server.headless.check import Analysis
    from lsp_server.headless.report import Report

NAME = "check"

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3
_FINGERPRINTED = frozenset({"json", "sarif"})
"""The formats that show fingerprints: the server computes them only for these (and to leave
out dismissed findings)."""

_EXIT_CODES = """exit codes:
  0  nothing at or above --fail-on
  1  at least one finding at or above --fail-on
  2  usage or configuration error (--ai without a model or cassette), nothing to check, or the
     server failed
  3  --wait ran out before every file was analysed, or an AI review did not finish (what
     arrived is still reported)"""


class Args(check_ai.AiArgs):
    paths: list[str]
    format: str
    output: str | None
    fail_on: str
    wait: float
    trust_workspace: bool


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="review files headless, as CI does",
        description="Review what `ruff check PATH...` would read (ruff's and the project's "
        "exclusions, .gitignore) through the same server an editor runs, and report.",
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths", nargs="*", default=["."], metavar="PATH", help="files or folders (default: .)"
    )
    parser.add_argument("--format", choices=["text", "json", "sarif", "github"], default="text")
    parser.add_argument("--output", metavar="FILE", help="write the report here, not to stdout")
    parser.add_argument(
        "--fail-on",
        choices=["error", "warning", "info", "never"],
        default="error",
        help="exit 1 when a finding is at or above this level (default: error)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for analysis to finish (default: 300)",
    )

    parser.add_argument("--trust-workspace", action="store_true", help=TRUST_HELP)
    check_ai.add_arguments(parser)


class UsageError(Exception):
    pass


def exit_code(report: Report, fail_on: str) -> int:
    from lsp_server.headless.report import level_rank

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


def _write_report(args: Args, report: Report, root: Path) -> None:
    from lsp_server.headless.reporters import render
    from lsp_server.headless.reporters.summary import summary_line

    text = render(report, args.format, root)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    # The text report ends with the summary; every other destination gets it on stderr.
    if args.output or args.format != "text":
        print(summary_line(report), file=sys.stderr)


def run(args: Args) -> int:
    from lsp_server.cli._interrupt import ctrl_c_leaves_at_once

    with ctrl_c_leaves_at_once():
        return _check(args)


def _check(args: Args) -> int:
    from lsp_server.headless import server_process

    root = Path.cwd().resolve()  # reports name files relative to where CI runs
    try:
        workspace = server_process.project_root(args.paths, root)
    except (OSError, ValueError):
        workspace = root  # missing paths are reported below
    # The server first: its start-up then overlaps ours.
    try:
        server = server_process.start(server_process.serve_command(args.trust_workspace), workspace)
    except OSError:
        server = None  # the client tries again, and says why it cannot
    try:
        return _check_with(args, root, workspace, server)
    finally:
        if server is not None and server.poll() is None:  # the check ended before using it
            server_process.stop(server)


def _check_with(
    args: Args, root: Path, workspace: Path, server: subprocess.Popen[bytes] | None
) -> int:
    import logging

    from lsp_server.config import load_settings
    from lsp_server.headless.ai_options import ai_run
    from lsp_server.headless.check import relative_path
    from lsp_server.headless.client import ServerError
    from lsp_server.headless.report import Report

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
        try:
            ai = ai_run(args, settings)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if ai is not None and not ai.hermetic:
            _keep_store(workspace, settings)
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE

    paths = list(dict.fromkeys(Path(path).resolve() for path in args.paths))
    try:
        analysis = _analyse(args, ai, workspace, paths, settings, root, server)
    except ServerError as exc:
        _error(f"the Gantry server failed: {exc}")
        return EXIT_USAGE
    for path, reason in analysis.skipped:
        print(f"gantry: skipped {relative_path(path, root)}: {reason}", file=sys.stderr)
    if not analysis.files:
        _error(
            f"nothing was checked: no Python file to review in {' '.join(args.paths)} "
            "(ruff's exclusions, the project's and .gitignore apply)"
        )
        return EXIT_USAGE
    not_analysed = tuple(sorted(relative_path(path, root) for path in analysis.not_analysed))
    ai_incomplete = tuple(
        sorted((relative_path(path, root), reason) for path, reason in analysis.ai_incomplete)
    )
    report = Report(analysis.findings, analysis.files, not_analysed, ai_incomplete)
    try:
        _write_report(args, report, root)
    except OSError as exc:
        _error(f"cannot write the report: {exc}")
        return EXIT_USAGE
    if report.not_analysed:
        print(
            f"gantry: analysis incomplete after {args.wait:g} s; not analysed: "
            + ", ".join(report.not_analysed),
            file=sys.stderr,
        )
    for path, reason in report.ai_incomplete:
        print(f"gantry: AI review incomplete for {path}: {reason}", file=sys.stderr)
    return exit_code(report, args.fail_on)


def _analyse(
    args: Args,
    ai: AiRun | None,
    workspace: Path,
    paths: list[Path],
    settings: Settings,
    root: Path,
    server: subprocess.Popen[bytes] | None,
) -> Analysis:
    import asyncio
    import contextlib
    import tempfile

    from lsp_server.headless.check import analyse

    options = dict(ai.options) if ai is not None else {}
    with contextlib.ExitStack() as stack:
        if ai is not None and ai.hermetic:
            # The cassette is a cassette run's cache: with the workspace's store, a recording
            # would leave out what that store holds, and a replay would mix in its answers and
            # its index's context. And a queue of its own: the workspace's would hand a replay
            # the jobs of live runs (to fail them), and keep its misses dead for a recording.
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gantry-")))
            options["store"] = str(folder / "store.db")  # never created: no cache, no index
            options["execution"] = {"queue": str(folder / "queue.db")}
        return asyncio.run(
            analyse(
                workspace,
                paths,
                args.wait,
                settings,
                root,
                fingerprints=args.format in _FINGERPRINTED,
                trust_workspace=args.trust_workspace,
                ai=ai is not None,
                options=options,
                server=server,
            )
        )


def _keep_store(workspace: Path, settings: Settings) -> None:
    """Create the workspace's store if it has none: the server opens one that exists, and the
    AI review's answers are cached there for the next run."""
    from lsp_server.config import store_path
    from lsp_server.store import Store

    path = store_path(workspace, settings)
    if path.exists():
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        Store.open(path).close()
    except Exception as exc:  # the check still runs; only the cache is lost
        print(
            f"gantry: warning: cannot create the store {path} ({exc}): answers are not cached",
            file=sys.stderr,
        )
