"""`gantry check [PATH...]`: review files headless, through the real server, as CI does."""

from __future__ import annotations

import argparse

from lsp_server.cli.serve import TRUST_HELP

NAME = "check"

_EXIT_CODES = """exit codes:
  0  nothing at or above --fail-on
  1  at least one finding at or above --fail-on
  2  usage or configuration error, nothing to check, or the server failed
  3  --wait ran out before every file was analysed (what arrived is still reported)"""


class Args(argparse.Namespace):
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


def run(args: Args) -> int:
    from lsp_server.cli._interrupt import ctrl_c_leaves_at_once

    with ctrl_c_leaves_at_once():
        from lsp_server.headless.check import run_check

        return run_check(args)
