"""`gantry serve [--tcp HOST:PORT] [--trust-workspace]`: the language server, on stdio."""

from __future__ import annotations

import argparse
import os

NAME = "serve"

TRUST_HELP = (
    "trust the workspace's own settings as if `gantry trust` had been run (for CI that owns "
    "its repository)"
)


class Args(argparse.Namespace):
    tcp: tuple[str, int] | None
    trust_workspace: bool


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host or "127.0.0.1", int(port)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(NAME, help="run the language server (stdio by default)")
    parser.add_argument("--tcp", type=_host_port, metavar="HOST:PORT", help="listen on TCP instead")
    parser.add_argument("--trust-workspace", action="store_true", help=TRUST_HELP)


def run(args: Args) -> int:
    # The indexer's pool workers run `python -c` in the workspace, which would put it first on
    # their sys.path too; -P reaches them only when it started us.
    os.environ["PYTHONSAFEPATH"] = "1"
    from lsp_server.cli._interrupt import ctrl_c_leaves_at_once

    with ctrl_c_leaves_at_once():
        from lsp_server.server import serve

        return serve(tcp=args.tcp, trust_workspace=args.trust_workspace)
