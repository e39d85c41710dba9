"""`gantry trust [PATH] [--revoke]`: let a workspace's own settings name programs, URLs,
credentials and paths, as they are now."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing to parse arguments
if TYPE_CHECKING:
    from lsp_server.trust import TrustStore

NAME = "trust"


class Args(argparse.Namespace):
    path: str
    revoke: bool


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="trust a workspace's settings to name programs, URLs, credentials and paths",
        description=(
            "Settings in a repository (gantry.toml, [tool.gantry]) may not choose what runs, "
            "where code and credentials go or which files are written, unless you trust them "
            "here. Trust is bound to the settings as they are now: when they change, Gantry "
            "ignores those keys again until you trust them again."
        ),
    )
    parser.add_argument("path", nargs="?", default=".", metavar="PATH")
    parser.add_argument("--revoke", action="store_true", help="stop trusting the workspace")


def run(args: Args, store: TrustStore | None = None) -> int:
    from lsp_server.config import Settings, read_project_settings
    from lsp_server.trust import TrustStore, withhold
    from lsp_server.typed_settings import normalise_keys

    store = store or TrustStore.default()
    root = Path(args.path).resolve()
    if not root.is_dir():
        print(f"gantry trust: {args.path} is not a directory", file=sys.stderr)
        return 2
    problems: list[str] = []
    source, table = read_project_settings(root, problems)
    if problems:
        print(f"gantry trust: {'; '.join(problems)}", file=sys.stderr)
        return 2
    if source is None:
        print(f"Nothing to trust: {root} has no gantry.toml or [tool.gantry] in pyproject.toml.")
        return 0
    if args.revoke:
        revoked = store.revoke(source)
        print(f"{source} is {'no longer' if revoked else 'not'} trusted.")
        return 0
    _, granted = withhold(normalise_keys(table, Settings), Settings, root)
    store.trust(source, table)
    if granted:
        print(f"Trusted {source}: its {', '.join(granted)} now apply.")
    else:
        print(f"Trusted {source} (it sets nothing that needed trust today).")
    print("If these settings change, Gantry ignores them again until you run `gantry trust`.")
    return 0
