"""`gantry gateway --token-file FILE ...`: the execution gateway, on the GPU machine."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "gateway"


class Args(argparse.Namespace):
    host: str
    port: int
    token_file: Path
    backend: str
    max_concurrency: int
    max_cpus: int | None
    max_memory_mb: int | None
    disk_quota_mb: int


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(NAME, help="run the execution gateway (on the GPU machine)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8710)
    parser.add_argument("--token-file", required=True, type=Path, metavar="FILE")
    parser.add_argument("--backend", choices=["local", "ray"], default="local")
    parser.add_argument("--max-concurrency", type=int, default=2, metavar="N")
    parser.add_argument(
        "--max-cpus",
        type=int,
        metavar="N",
        help="most CPUs one job may ask for (default: the host's)",
    )
    parser.add_argument(
        "--max-memory-mb",
        type=int,
        metavar="MB",
        help="most memory one job may ask for (default: the host's RAM)",
    )
    parser.add_argument(
        "--disk-quota-mb",
        type=int,
        default=1024,
        metavar="MB",
        help="what one job may write in its directory, and as much again in /tmp (RAM-backed; "
        "default: 1024)",
    )


def run(args: Args) -> int:
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
