"""The eval's results as a table for people or JSON for tools."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from lsp_server.review.ai.eval.score import WINDOW, CaseOutcome, Metrics, Ratio


def _percent(ratio: Ratio) -> str:
    return "-" if ratio.value is None else f"{100 * ratio.value:.1f}%"


def table(metrics: Metrics, title: str) -> str:
    m = metrics
    fp = m.false_positives_per_100_lines
    rows = [
        (
            "cases",
            f"{m.cases} ({m.bug_cases} seeded bugs, {m.clean_cases} clean), {m.scored} scored",
        ),
        ("units reviewed", f"{m.units} ({m.bad_answers} bad answers)"),
        (
            "recall",
            (
                f"{_percent(m.recall)} ({m.recall.part} of {m.recall.whole} seeded bugs found "
                f"within ±{WINDOW} lines)"
            ),
        ),
        (
            "precision",
            f"{_percent(m.precision)} ({m.precision.part} of {m.precision.whole} findings)",
        ),
        (
            "false positives",
            (
                f"{'-' if fp is None else f'{fp:.1f}'} per 100 changed lines "
                f"({m.false_positives} in {m.changed_lines} lines)"
            ),
        ),
        ("silent units", f"{_percent(m.silent)} ({m.silent.part} of {m.silent.whole})"),
        (
            "fix validation",
            (
                f"{_percent(m.fix_validation)} ({m.fix_validation.part} of "
                f"{m.fix_validation.whole} suggested fixes passed)"
            ),
        ),
        (
            "tokens",
            f"{m.input_tokens + m.output_tokens} ({m.input_tokens} in, {m.output_tokens} out)",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join([title, *(f"  {name:<{width}}  {value}" for name, value in rows)]) + "\n"


def _ratio(ratio: Ratio) -> dict[str, Any]:
    return {"value": ratio.value, "part": ratio.part, "whole": ratio.whole}


def as_json(metrics: Metrics, outcomes: Sequence[CaseOutcome], source: str) -> dict[str, Any]:
    m = metrics
    return {
        "source": source,
        "window": WINDOW,
        "cases": {"total": m.cases, "bug": m.bug_cases, "clean": m.clean_cases, "scored": m.scored},
        "units": m.units,
        "bad_answers": m.bad_answers,
        "recall": _ratio(m.recall),
        "precision": _ratio(m.precision),
        "false_positives": {
            "count": m.false_positives,
            "changed_lines": m.changed_lines,
            "per_100_lines": m.false_positives_per_100_lines,
        },
        "silent_units": _ratio(m.silent),
        "fix_validation": _ratio(m.fix_validation),
        "tokens": {
            "input": m.input_tokens,
            "output": m.output_tokens,
            "total": m.input_tokens + m.output_tokens,
        },
        "per_case": [
            {
                "id": o.id,
                "kind": o.kind,
                "scored": o.scored,
                "changed_lines": o.changed_lines,
                "unanswered": list(o.unanswered),
                "units": [attrs.asdict(unit) for unit in o.units],
            }
            for o in outcomes
        ],
    }
