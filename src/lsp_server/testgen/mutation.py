"""The funnel's second way to keep a test: a reliable candidate that adds no coverage is kept
when it kills a mutant of the target that the suite (with the tests kept so far) lets pass.
The mutants and the runs are the driver's (``mutate``, with sandbox_mutants), in one job; this
reads what it wrote, which the code under test could have scribbled on: only kills of asked-for
candidates, on mutants the suite did not kill, are believed."""

from __future__ import annotations

import json

MIN_S = 8.0
"""Below this much of the budget left, no mutant is tried."""
MAX_MUTANTS = 12
REPORT = "mutants.json"


def lines_of(covered: set) -> list[int]:
    """The target's lines in a run's coverage (("line", n) entries)."""
    return sorted(k[1] for k in covered if k[0] == "line")


def kills(text: str | None, asked: list[str]) -> dict[str, str]:
    """Candidate node id -> the mutant it killed ("line 12: >= -> >"), from the driver's
    report; {} for what does not parse."""
    try:
        records = json.loads(text or "")["mutants"]
        found = {}
        for r in records:
            node, mutant = r["killed_by"], r["mutant"]
            if node in asked and r["suite"] in ("passed", "none") and isinstance(mutant, str):
                found.setdefault(node, mutant[:200])
        return found
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}
