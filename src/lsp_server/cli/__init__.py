"""The `gantry` command: one module per subcommand, each in the same shape:

    NAME                      the subcommand, `gantry NAME`
    class Args(Namespace)     what its arguments parse into, typed
    add_parser(subparsers)    adds its parser to `gantry`'s
    run(args: Args) -> int    runs it; the result is the exit status

A subcommand module imports at the top only what parsing needs (argparse, pathlib); `run`
imports its machinery, so `gantry serve` starts without paying for the rest and `gantry --help`
for none of it. Hence a Namespace subclass for the types rather than attrs (importing attrs
would cost every parse of the command line tens of milliseconds), and `TYPE_CHECKING = False`
rather than importing typing's."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from lsp_server import __version__
from lsp_server.cli import check, doctor, eval, gateway, index, queue, serve, testgen, trust

COMMANDS = {
    command.NAME: command
    for command in (serve, check, testgen, eval, trust, index, queue, doctor, gateway)
}
"""In the order `gantry --help` lists them."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gantry", description="Gantry: code review, fixes and tests in your language server."
    )
    parser.add_argument("--version", action="version", version=f"gantry {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parsed = _parser().parse_args(argv)
    command = COMMANDS[parsed.command]
    try:
        return command.run(command.Args(**vars(parsed)))
    except KeyboardInterrupt:
        from lsp_server.cli._interrupt import say_interrupted

        say_interrupted()
        return 130
