"""A candidate whose assertion fails against the current code, every time it ran, is evidence:
either the test is wrong or the code is. It is kept aside with the failing assertion and the
input that made it fail, for a person to judge, instead of being dropped."""

from __future__ import annotations

import re

import attrs

from .candidates import Candidate

_MAX_LINES = 12


@attrs.frozen
class PossibleBug:
    candidate: Candidate
    assertion: str
    """pytest's explanation of the failed assertion (its ``E`` lines)."""
    input: str
    """Hypothesis' falsifying example, else the failing line of the test."""
    runs_failed: int


_EXAMPLE = ("Falsifying example:", "Failing test case:")
"""How Hypothesis introduces the input it shrank a failure to (older, newer releases)."""
_NOTES = (*_EXAMPLE, "Explanation:", "You can reproduce this example")


def _explained(longrepr: str) -> list[str]:
    """pytest's ``E`` lines: the exception, its explanation and its notes."""
    return [
        re.sub(r"^E {0,3}", "", line)
        for line in longrepr.splitlines()
        if re.match(r"E(\s|$)", line)
    ]


def _example(lines: list[str]) -> str | None:
    for i, line in enumerate(lines):
        if line.strip().startswith(_EXAMPLE):
            example = [line.strip()]
            for more in lines[i + 1 :]:  # the call goes on over indented lines up to ")"
                example.append(more.rstrip())
                if more.strip().startswith(")") or not more.startswith(" "):
                    break
            return "\n".join(example)
    return None


def _failing_line(longrepr: str) -> str | None:
    marked = [line[1:].strip() for line in longrepr.splitlines() if line.startswith(">")]
    return marked[-1] if marked else None


def from_failure(candidate: Candidate, longrepr: str, runs_failed: int) -> PossibleBug:
    lines = _explained(longrepr)
    notes = next((i for i, line in enumerate(lines) if line.strip().startswith(_NOTES)), None)
    assertion = "\n".join(line.rstrip() for line in lines[:notes][:_MAX_LINES]).strip()
    return PossibleBug(
        candidate=candidate,
        assertion=assertion or "AssertionError",
        input=_example(lines) or _failing_line(longrepr) or "",
        runs_failed=runs_failed,
    )


def as_expected_failure(bug: PossibleBug) -> Candidate:
    """The bug's test marked ``pytest.mark.xfail(strict=True)``: it documents the behaviour,
    and the suite fails once the code changes so that it passes (then the mark goes)."""
    c = bug.candidate
    reason = f"possible bug: {bug.assertion.splitlines()[0]}"[:200]
    source = f"@pytest.mark.xfail(strict=True, reason={reason!r})\n{c.source}"
    imports = c.imports if "import pytest" in c.imports else ("import pytest", *c.imports)
    return attrs.evolve(c, id=f"{c.id}-xfail", source=source, imports=imports)
