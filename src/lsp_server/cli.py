"""The `gantry` command. Each subcommand imports its machinery only when it runs, so
`gantry serve` starts without paying for the rest."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from lsp_server import __version__


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host or "127.0.0.1", int(port)


_TRUST_HELP = (
    "trust the workspace's own settings as if `gantry trust` had been run (for CI that owns "
    "its repository)"
)


_CHECK_EXIT_CODES = """exit codes:
  0  nothing at or above --fail-on
  1  at least one finding at or above --fail-on
  2  usage or configuration error, nothing to check, or the server failed
  3  --wait ran out before every file was analysed (what arrived is still reported)"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gantry", description="Gantry: code review, fixes and tests in your language server."
    )
    parser.add_argument("--version", action="version", version=f"gantry {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the language server (stdio by default)")
    serve.add_argument("--tcp", type=_host_port, metavar="HOST:PORT", help="listen on TCP instead")
    serve.add_argument("--trust-workspace", action="store_true", help=_TRUST_HELP)

    check = sub.add_parser(
        "check",
        help="review files headless, as CI does",
        description="Review what `ruff check PATH...` would read (ruff's and the project's "
        "exclusions, .gitignore) through the same server an editor runs, and report.",
        epilog=_CHECK_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "paths", nargs="*", default=["."], metavar="PATH", help="files or folders (default: .)"
    )
    check.add_argument("--format", choices=["text", "json", "sarif", "github"], default="text")
    check.add_argument("--output", metavar="FILE", help="write the report here, not to stdout")
    check.add_argument(
        "--fail-on",
        choices=["error", "warning", "info", "never"],
        default="error",
        help="exit 1 when a finding is at or above this level (default: error)",
    )
    check.add_argument(
        "--wait",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for analysis to finish (default: 300)",
    )

    check.add_argument("--trust-workspace", action="store_true", help=_TRUST_HELP)

    trust = sub.add_parser(
        "trust",
        help="trust a workspace's settings to name programs, URLs, credentials and paths",
        description=(
            "Settings in a repository (gantry.toml, [tool.gantry]) may not choose what runs, "
            "where code and credentials go or which files are written, unless you trust them "
            "here. Trust is bound to the settings as they are now: when they change, Gantry "
            "ignores those keys again until you trust them again."
        ),
    )
    trust.add_argument("path", nargs="?", default=".", metavar="PATH")
    trust.add_argument("--revoke", action="store_true", help="stop trusting the workspace")

    index = sub.add_parser("index", help="index a workspace into the context store")
    index.add_argument("path", nargs="?", default=".", metavar="PATH")

    queue = sub.add_parser("queue", help="inspect and steer the durable job queue")
    queue.add_argument("action", choices=["list", "show", "retry", "cancel", "purge"])
    queue.add_argument("id", nargs="?", type=int, metavar="ID")
    queue.add_argument("--dead", action="store_true", help="with purge: delete dead jobs")
    queue.add_argument("--limit", type=int, default=50, help="with list: how many jobs")
    queue.add_argument("--workspace", default=".", metavar="PATH")

    doctor = sub.add_parser("doctor", help="check endpoints, gateway, sandbox, ruff and store")
    doctor.add_argument("--workspace", default=".", metavar="PATH")

    gateway = sub.add_parser("gateway", help="run the execution gateway (on the GPU machine)")
    gateway.add_argument("--host", default="127.0.0.1")
    gateway.add_argument("--port", type=int, default=8710)
    gateway.add_argument("--token-file", required=True, type=Path, metavar="FILE")
    gateway.add_argument("--backend", choices=["local", "ray"], default="local")
    gateway.add_argument("--max-concurrency", type=int, default=2, metavar="N")
    gateway.add_argument(
        "--max-cpus",
        type=int,
        metavar="N",
        help="most CPUs one job may ask for (default: the host's)",
    )
    gateway.add_argument(
        "--max-memory-mb",
        type=int,
        metavar="MB",
        help="most memory one job may ask for (default: the host's RAM)",
    )
    gateway.add_argument(
        "--disk-quota-mb",
        type=int,
        default=1024,
        metavar="MB",
        help="what one job may write in its directory, and as much again in /tmp (RAM-backed; "
        "default: 1024)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("serve", "index"):
        # The indexer's pool workers run `python -c` in the workspace, which would put it first on
        # their sys.path too; -P reaches them only when it started us.
        os.environ["PYTHONSAFEPATH"] = "1"
    asyncio_driven = args.command in ("serve", "check")
    try:
        with _ctrl_c_leaves_at_once() if asyncio_driven else contextlib.nullcontext():
            return _run(args)
    except KeyboardInterrupt:
        _say_interrupted()
        return 130


def _say_interrupted() -> None:
    """Ctrl-C: one line, not a traceback; 130 (128 + SIGINT) is what a shell expects."""
    with contextlib.suppress(OSError):  # `gantry check`, reading a server's stderr, may be gone
        os.write(2, b"gantry: interrupted\n")


_leaving = threading.Lock()


def _leave_at_once(*_: object) -> None:
    if _leaving.acquire(blocking=False):  # the handler and the watcher may both get here
        _say_interrupted()
        os._exit(130)


@contextlib.contextmanager
def _ctrl_c_leaves_at_once() -> Iterator[None]:
    """Ctrl-C in the asyncio commands leaves at once. asyncio.run would make it a cancellation,
    which waits for the work in flight and which Python 3.11's wait_for can swallow; raised as
    an exception inside the loop, it can leave the loop waiting forever. Nothing is lost by
    leaving: the store and the queue commit as they go (they survive a kill -9 too), and what we
    started ends with us (the server `check` runs sees its input close, pool workers and jobs
    have a parent-death signal).

    A Python handler runs only once the main thread runs Python again, and the kernel may hand
    the signal to another thread while the loop sleeps; so the signal's wakeup byte, written by
    whichever thread gets it, also wakes a thread of ours."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    handler = signal.signal(signal.SIGINT, _leave_at_once)
    wakeup = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    threading.Thread(
        target=_watch_for_ctrl_c, args=(read,), name="gantry-ctrl-c", daemon=True
    ).start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(wakeup)
        signal.signal(signal.SIGINT, handler)
        os.close(write)  # the watcher reads the end and closes its side


def _watch_for_ctrl_c(read: int) -> None:
    while byte := os.read(read, 1):
        if byte[0] == signal.SIGINT:  # other signals with Python handlers write theirs too
            _leave_at_once()
    os.close(read)


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        from lsp_server.server import serve

        return serve(tcp=args.tcp, trust_workspace=args.trust_workspace)
    if args.command == "check":
        from lsp_server.headless.check import run_check

        return run_check(args)
    if args.command == "trust":
        from lsp_server.trust_cli import run_trust

        return run_trust(args)
    if args.command == "index":
        from lsp_server.index_cli import run_index

        return run_index(args)
    if args.command == "queue":
        from lsp_server.queue_cli import run_queue

        return run_queue(args)
    if args.command == "doctor":
        from lsp_server.doctor import run_doctor

        return run_doctor(args)
    if args.command == "gateway":
        from remote_exec.gateway.serve import run_gateway

        return run_gateway(
            args.host,
            args.port,
            args.token_file,
            args.backend,
            args.max_concurrency,
            max_cpus=args.max_cpus,
            max_memory_mb=args.max_memory_mb,
            disk_quota_mb=args.disk_quota_mb,
        )
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
