"""`gantry testgen FILE[::SYMBOL]`: generate tests for a module or one of its functions or
classes, keep those that pass every rerun in the sandbox and add coverage, and print them with
the funnel's counts, or (--write) merge them into the project's own test file. With gateways
configured, its jobs go through the project's durable queue as the server's do
(testgen/dispatch.py); without, straight to the local sandbox (no queue file is created)."""

from __future__ import annotations

import argparse

NAME = "testgen"
ENGINE_CHOICES = ("local", "model", "all")


class Args(argparse.Namespace):
    target: str
    write: bool
    json: bool
    engines: str
    budget: float
    reruns: int


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="generate tests validated in the sandbox",
        description="Generate candidate tests, run them in the sandbox, keep those that pass "
        "every rerun and add coverage; a candidate whose assertion fails is shown as a "
        "possible bug. With gateways configured, jobs go through the project's queue (a "
        "gateway when one is up, else the local sandbox; a target needing a GPU waits for a "
        "gateway with one, for at most the budget). Exit 0 when it ran, whatever it kept; 1 "
        "when nothing could run; 2 on usage errors.",
    )
    parser.add_argument("target", metavar="FILE[::SYMBOL]")
    parser.add_argument("--write", action="store_true", help="merge kept tests into the project")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--engines",
        choices=ENGINE_CHOICES,
        default="local",
        help="local: Hypothesis, the coverage-guided search and CrossHair (no model needed); "
        "model: a model's rounds alone; all: both (default: local)",
    )
    parser.add_argument(
        "--budget", type=_positive, default=120.0, metavar="SECONDS", help="wall clock in all"
    )
    parser.add_argument("--reruns", type=int, default=5, choices=range(1, 21), metavar="N")


def run(args: Args) -> int:
    import sys
    from pathlib import Path

    from lsp_server.config import load_settings
    from lsp_server.testgen.jobs import Budget
    from lsp_server.testgen.targets import TargetError, resolve

    budget = Budget.of(args.budget)  # the clock starts here: the user's whole wait is budgeted
    try:
        target = resolve(args.target)
    except TargetError as exc:
        print(f"gantry testgen: {exc}", file=sys.stderr)
        return 2
    settings = load_settings(target.root).settings
    if settings.testgen.gpu_paths:  # the project's own marks, now that its settings are read
        target = resolve(args.target, gpu_paths=settings.testgen.gpu_paths)
    queued = bool(settings.execution.gateway_targets())
    if target.needs_gpu and not queued:
        _say(
            f"nothing ran: {target.relpath} needs a GPU ({target.needs_gpu}), so its tests run"
            " only on a gateway with one, and none is configured ([[execution.gateways]] in"
            " your user configuration, or a workspace you trust)"
        )
        return 1
    from lsp_server.testgen.dispatch import NotRun
    from remote_exec.sandbox import SandboxUnavailable

    jobs = _Tally()
    try:
        generated, queued = _run_jobs(target, settings, budget, args, jobs, queued)
    except (SandboxUnavailable, NotRun) as exc:
        done = f"stopped after {jobs.ran.total()} job(s)" if jobs.ran else "nothing ran"
        _say(f"{done}: {exc}")
        return 1
    if jobs.tried and not jobs.ran:  # every job it sent ended in the queue
        waited = "a gateway with a GPU" if target.needs_gpu else "a gateway"
        _say(
            f"nothing ran: none of the {jobs.tried} job(s) sent for {target.relpath} left the queue"
            f" within the budget ({args.budget:g} s): they wait for {waited}, and were cancelled"
        )
        return 1
    notes = list(generated.notes)
    if (problem := _remember(generated, settings)) is not None:
        notes.append(problem)
    written = None
    if args.write and generated.placement is not None:
        placement = generated.placement
        placement.path.parent.mkdir(parents=True, exist_ok=True)
        placement.path.write_text(placement.text, encoding="utf-8")
        written = placement.path
    from lsp_server.testgen import render

    where = dict(jobs.ran) if queued else None
    if args.json:
        print(render.as_json(generated, notes, written, Path.cwd(), where))
    else:
        print(render.as_text(generated, notes, written, Path.cwd(), where))
    return 0


class _Tally:
    """The jobs of a run through the queue: how many were sent, and where those that ran ran
    ("local", or a gateway's name)."""

    def __init__(self) -> None:
        from collections import Counter

        self.tried = 0
        self.ran: Counter[str] = Counter()


def _say(message: str) -> None:
    import sys

    print(f"gantry testgen: {message}", file=sys.stderr, flush=True)


def _run_jobs(target, settings, budget, args: Args, jobs: _Tally, queued: bool):
    """The run (Generated), and whether its jobs went through the queue: they do with
    gateways configured, unless the queue cannot start (then, as in the editor, a CPU target's
    run in the local sandbox, and a GPU target's not at all: NotRun)."""
    from lsp_server.testgen.dispatch import NotRun, QueueUnavailable
    from lsp_server.testgen.jobs import local_runner

    if queued:
        try:
            return _through_queue(target, settings, budget, args, jobs), True
        except QueueUnavailable as exc:
            if target.needs_gpu:
                raise NotRun(str(exc)) from None
            _say(f"warning: {exc}; the jobs run in the local sandbox")
    run = local_runner(unsandboxed=settings.execution.unsandboxed)
    return _generate(target, run, settings, budget, args), False


def _generate(target, run, settings, budget, args: Args):  # -> Generated
    from lsp_server.testgen.candidates import ENGINES
    from lsp_server.testgen.generate import generate
    from lsp_server.testgen.model_access import from_settings

    return generate(
        target,
        run,
        budget,
        engines=() if args.engines == "model" else ENGINES,
        model=None if args.engines == "local" else from_settings(settings),
        reruns=args.reruns,
        ruff=_ruff(settings),
        isolated=not settings.execution.unsandboxed,
    )


def _through_queue(target, settings, budget, args: Args, jobs: _Tally):  # -> Generated
    """The run with its jobs through the project's queue, as the server sends them: to a
    gateway when one is up, else (CPU jobs) the local sandbox; a GPU target's wait for a
    gateway with a GPU, said on stderr, for at most the budget. Whatever of the run is still
    queued or running when it ends (the budget, an error, Ctrl-C) is cancelled."""
    import asyncio
    import threading
    import uuid

    from lsp_server.testgen.dispatch import (
        CLIENT_WAIT_S,
        NOT_RUN,
        dispatched,
        project_queue,
        waiting_reasons,
    )
    from lsp_server.testgen.run_control import stage_of

    names = {g.url.rstrip("/"): g.name for g in settings.execution.gateway_targets()}
    if target.needs_gpu:
        _say(
            f"{target.relpath} needs a GPU ({target.needs_gpu}): its jobs run only on a gateway"
            f" with one, and wait in the queue for it for at most the budget ({args.budget:g} s)"
        )
    prefix = f"testgen:cli:{uuid.uuid4().hex[:16]}:"
    cancel = threading.Event()
    stop = threading.Event()
    with project_queue(target.root, settings, announce=_say) as (dispatcher, loop):
        watcher = waiting_reasons(
            dispatcher, loop, prefix, lambda why: _say(f"waiting in the queue: {why}"), stop
        )
        run = dispatched(dispatcher, loop, cancel, prefix, deadline=budget.deadline)

        def job(spec):  # ExecSpec -> ExecResult
            if budget.left() > 0:  # past it, nothing is sent (dispatched)
                _say("{}: {}".format(*stage_of(spec)))
                jobs.tried += 1
            result = run(spec)
            if result.where != NOT_RUN:
                jobs.ran[names.get(result.where, result.where)] += 1
            return result

        try:
            return _generate(target, job, settings, budget, args)
        finally:
            stop.set()
            asyncio.run_coroutine_threadsafe(dispatcher.cancel_superseded(prefix), loop).result(
                CLIENT_WAIT_S
            )
            watcher.join(CLIENT_WAIT_S)


def _remember(generated, settings) -> str | None:  # Generated, Settings: imported lazily
    """Record the run in the project's store, where it has one (like `gantry check`, this
    command creates none)."""
    import sqlite3

    from lsp_server.config import store_path
    from lsp_server.store import NewerSchemaError, NotAStoreError, Store
    from lsp_server.testgen.history import remember

    path = store_path(generated.target.root, settings)
    if not path.is_file():
        return None
    try:
        with Store.open(path, thorough=False) as store:
            return remember(store, generated)
    except (NotAStoreError, NewerSchemaError, OSError, sqlite3.Error) as exc:
        return f"the run's counts were not stored ({exc})"


def _ruff(settings) -> str | None:  # settings: Settings, imported lazily
    from lsp_server.review.ruff_engine import RuffUnavailable, find_ruff

    try:
        return find_ruff(settings)
    except RuffUnavailable:
        return None
