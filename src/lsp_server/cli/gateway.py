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
    keep_finished_hours: float
    max_finished: int
    ray_address: str | None
    ray_gpu_resource: str | None
    ray_max_retries: int


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
    parser.add_argument(
        "--keep-finished-hours",
        type=float,
        default=24.0,
        metavar="H",
        help="how long finished jobs (and their results) are kept (default: 24)",
    )
    parser.add_argument(
        "--max-finished",
        type=int,
        default=10_000,
        metavar="N",
        help="most finished jobs kept, the newest (default: 10000)",
    )
    ray = parser.add_argument_group("ray backend")
    ray.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="an existing Ray cluster (host:port of its head, or auto); default: start a local one",
    )
    ray.add_argument(
        "--ray-gpu-resource",
        metavar="NAME",
        help="a custom resource each GPU of a job also needs (e.g. h100): only nodes that "
        "declare it run GPU jobs",
    )
    ray.add_argument(
        "--ray-max-retries",
        type=int,
        default=3,
        metavar="N",
        help="how often a job whose worker or node died is run again (default: 3)",
    )


def run(args: Args) -> int:
    from remote_exec.gateway.serve import RayOptions, run_gateway

    return run_gateway(
        args.host,
        args.port,
        args.token_file,
        args.backend,
        args.max_concurrency,
        max_cpus=args.max_cpus,
        max_memory_mb=args.max_memory_mb,
        disk_quota_mb=args.disk_quota_mb,
        keep_finished_hours=args.keep_finished_hours,
        max_finished=args.max_finished,
        ray_options=RayOptions(args.ray_address, args.ray_gpu_resource, args.ray_max_retries),
    )
