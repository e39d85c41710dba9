"""`gantry index [PATH]`: index a workspace into its context store, with progress on stderr."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing to parse arguments
if TYPE_CHECKING:
    from lsp_server.analysis.indexer import IndexStats

NAME = "index"


class Args(argparse.Namespace):
    path: str


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(NAME, help="index a workspace into the context store")
    parser.add_argument("path", nargs="?", default=".", metavar="PATH")


def run(args: Args) -> int:
    # The indexer's pool workers run `python -c` in the workspace, which would put it first on
    # their sys.path too; -P reaches them only when it started us.
    os.environ["PYTHONSAFEPATH"] = "1"
    import sqlite3

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lsp_server.analysis.indexer import Indexer
    from lsp_server.config import load_settings, store_path
    from lsp_server.store import NewerSchemaError, NotAStoreError, Store

    console = Console(stderr=True, soft_wrap=True)  # never wrap paths mid-word
    root = Path(args.path).resolve()
    if not root.is_dir():
        console.print(f"gantry index: {args.path} is not a directory")
        return 2
    loaded = load_settings(root)
    settings = loaded.settings
    for problem in loaded.problems:
        console.print(f"[yellow]settings:[/] {problem}")
    if (withheld := loaded.withheld_message()) is not None:
        console.print(f"[yellow]settings:[/] {withheld}")
    try:
        store = Store.open(store_path(root, settings))
    except (NotAStoreError, NewerSchemaError, OSError, sqlite3.Error) as exc:
        console.print(f"gantry index: the context store cannot be opened: {exc}")
        return 2
    try:
        if store.recovery_message:
            console.print(f"[yellow]{store.recovery_message}[/]")
        with Progress(
            TextColumn("indexing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[path]}", style="dim"),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("index", total=None, path="")
            stats = Indexer(store, root, settings).index_all(
                progress=lambda done, total, path: bar.update(
                    task, completed=done, total=total, path=path
                )
            )
        print(summary(stats, store.path))
    finally:
        store.close()
    return 0


def summary(stats: IndexStats, path: Path) -> str:
    skipped = ", ".join(
        f"{count} {reason}" for reason, count in sorted(stats.files_skipped.items())
    )
    rate = stats.lines / stats.seconds if stats.seconds else 0.0
    return "\n".join(
        (
            (
                f"files: {stats.files_parsed} indexed, {stats.files_reused} reused, "
                f"{stats.files_unchanged} unchanged, {stats.files_removed} removed"
            ),
            f"skipped: {skipped or 'none'}",
            f"lines: {stats.lines}, symbols: {stats.symbols}",
            f"time: {stats.seconds:.2f} s ({rate:,.0f} lines/s)",
            f"store: {path}",
        )
    )
