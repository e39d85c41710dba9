"""What every remote_exec bench shares: its rows (dicts with section, tool, metric, value,
target, met: True/False/None, and an optional note), timing, and the markdown table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def row(
    section: str,
    tool: str,
    metric: str,
    value: object,
    target: str = "",
    met: bool | None = None,
    note: str = "",
) -> dict:
    return {
        "section": section,
        "tool": tool,
        "metric": metric,
        "value": value,
        "target": target,
        "met": met,
        "note": note,
    }


def median_ms(fn: Callable[[], object], runs: int) -> float:
    """The median wall time of `runs` calls, in milliseconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(rows: list[dict]) -> str:
    lines = [
        "| section | tool | metric | value | target | met? | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = "" if row.get("met") is None else ("met" if row["met"] else "missed")
        cells = (
            row["section"],
            row["tool"],
            row["metric"],
            row["value"],
            row.get("target", ""),
            met,
            row.get("note", ""),
        )
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)
