"""What the AI review tests share: a small module with a bug, and the model's finding about
it in the answer schema (review/ai/answer.py). The scripted model server itself is the `api`
fixture (conftest.py)."""

from __future__ import annotations

AVERAGE = """\
def average(values):
    total = 0
    for value in values:
        total += value
    return total / len(values)
"""
DIVISION = "return total / len(values)"
GOOD_FIX = "return total / len(values) if values else 0.0"


def division_bug(
    *,
    line: int = 5,
    search: str = DIVISION,
    replace: str = GOOD_FIX,
    rationale: str = "len(values) is 0 for an empty list.",
) -> dict:
    """The finding a model reports on AVERAGE's division (`line` within the unit)."""
    return {
        "start_line": line,
        "end_line": line,
        "severity": "warning",
        "category": "bug",
        "message": "Division by zero when values is empty",
        "rationale": rationale,
        "confidence": 0.9,
        "fix": {"search": search, "replace": replace},
    }
