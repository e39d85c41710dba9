"""`gantry testgen FILE[::SYMBOL]`: generate tests for a module or one of its functions or
classes, keep those that pass every rerun in the sandbox and add coverage, and print them with
the funnel's counts, or (--write) merge them into the project's own test file."""

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
        "possible bug. Exit 0 when it ran, whatever it kept; 2 on usage errors.",
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
    from lsp_server.testgen.jobs import Budget, local_runner
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
    if target.needs_gpu:
        print(
            f"gantry testgen: nothing ran: {target.relpath} needs a GPU ({target.needs_gpu}), so"
            " its tests run only on a gateway with one, and this command runs them in the local"
            " sandbox; generate them from the editor with a GPU gateway configured",
            file=sys.stderr,
        )
        return 1
    from lsp_server.testgen.candidates import ENGINES
    from lsp_server.testgen.generate import generate
    from lsp_server.testgen.model_access import from_settings
    from remote_exec.sandbox import SandboxUnavailable

    try:
        generated = generate(
            target,
            local_runner(unsandboxed=settings.execution.unsandboxed),
            budget,
            engines=() if args.engines == "model" else ENGINES,
            model=None if args.engines == "local" else from_settings(settings),
            reruns=args.reruns,
            ruff=_ruff(settings),
            isolated=not settings.execution.unsandboxed,
        )
    except SandboxUnavailable as exc:
        print(f"gantry testgen: nothing ran: {exc}", file=sys.stderr)
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

    if args.json:
        print(render.as_json(generated, notes, written, Path.cwd()))
    else:
        print(render.as_text(generated, notes, written, Path.cwd()))
    return 0


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
