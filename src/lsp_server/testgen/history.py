"""A run's funnel as the store keeps it (`gantry testgen` and the editor record each run), so
that runs on a file can be compared over time."""

from __future__ import annotations

import json

import attrs

from lsp_server.store import Store, TestgenRun
from lsp_server.testgen.generate import Generated


def record(generated: Generated) -> TestgenRun:
    target, funnel = generated.target, generated.funnel
    model = generated.model
    return TestgenRun(
        path=target.path.relative_to(target.root).as_posix(),  # the same on a project's copy
        symbols=tuple(symbol.name for symbol in target.symbols),
        kept=len(funnel.kept),
        possible_bugs=len(funnel.possible_bugs),
        seconds=funnel.report.seconds,
        tokens=model.input_tokens + model.output_tokens if model is not None else 0,
        report=json.dumps(attrs.asdict(funnel.report)),
    )


def remember(store: Store, generated: Generated) -> str | None:
    """Record the run; why it could not be, for the user, when the store refused it."""
    import sqlite3

    try:
        store.record_testgen_run(record(generated))
    except sqlite3.Error as exc:
        return f"the run's counts were not stored ({exc})"
    return None
