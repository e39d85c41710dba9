"""`gantry queue list|show ID|retry ID|cancel ID|purge --dead`: the workspace's durable job
queue, from a terminal. Works while editors run: the queue file is shared safely."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "queue"


class Args(argparse.Namespace):
    action: str
    id: int | None
    dead: bool
    limit: int
    workspace: str


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(NAME, help="inspect and steer the durable job queue")
    parser.add_argument("action", choices=["list", "show", "retry", "cancel", "purge"])
    parser.add_argument("id", nargs="?", type=int, metavar="ID")
    parser.add_argument("--dead", action="store_true", help="with purge: delete dead jobs")
    parser.add_argument("--limit", type=int, default=50, help="with list: how many jobs")
    parser.add_argument("--workspace", default=".", metavar="PATH")


def _when(epoch: float | None) -> str:
    import datetime

    if not epoch:
        return "-"
    return datetime.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def run(args: Args) -> int:
    import json

    import attrs

    from lsp_server.config import load_settings, queue_path
    from remote_exec.queue import JobQueue

    root = Path(args.workspace).resolve()
    loaded = load_settings(root)
    settings = loaded.settings
    for problem in loaded.problems:
        print(f"gantry: warning: invalid setting {problem}", file=sys.stderr)
    if (withheld := loaded.withheld_message()) is not None:
        print(f"gantry: warning: {withheld}", file=sys.stderr)
    path = queue_path(root, settings)
    if not path.exists():
        print(f"No queue yet for {root} ({path}).")
        return 0
    queue = JobQueue(path)
    try:
        if args.action == "list":
            jobs = queue.list(limit=args.limit)
            counts = ", ".join(f"{n} {state}" for state, n in sorted(queue.counts().items()))
            print(f"{path}: {counts or 'empty'}")
            for job in jobs:
                line = f"{job.id:>6}  {job.state:<9} {job.kind:<9} {job.attempts}/{job.max_attempts}  {job.key}"
                print(line + (f"  ({job.error})" if job.error else ""))
            return 0
        if args.action == "purge":
            if not args.dead:
                print(
                    "gantry: error: purge needs --dead (dead jobs are kept until you say so)",
                    file=sys.stderr,
                )
                return 2
            print(f"Purged {queue.purge_dead()} dead job(s).")
            return 0
        if args.id is None:
            print(f"gantry: error: queue {args.action} needs a job ID", file=sys.stderr)
            return 2
        job = queue.get(args.id)
        if job is None:
            print(f"gantry: error: no job {args.id}", file=sys.stderr)
            return 1
        if args.action == "show":
            print(
                json.dumps(
                    {
                        "id": job.id,
                        "key": job.key,
                        "kind": job.kind,
                        "state": job.state,
                        "priority": job.priority,
                        "attempts": job.attempts,
                        "max_attempts": job.max_attempts,
                        "not_before": _when(job.not_before),
                        "lease_owner": job.lease_owner,
                        "created_at": _when(job.created_at),
                        "updated_at": _when(job.updated_at),
                        "error": job.error,
                        "resources": attrs.asdict(job.resources),
                        "result": job.result,
                    },
                    indent=2,
                    default=str,
                )
            )
            return 0
        if args.action == "retry":
            done = queue.retry(job.id)
            print(
                f"Job {job.id} queued again."
                if done
                else f"Job {job.id} is {job.state}: nothing to retry."
            )
            return 0 if done else 1
        if args.action == "cancel":
            done = queue.cancel(job.id)
            print(
                f"Job {job.id} cancelled."
                if done
                else f"Job {job.id} is {job.state}: not cancelled."
            )
            return 0 if done else 1
    finally:
        queue.close()
    raise AssertionError(args.action)
