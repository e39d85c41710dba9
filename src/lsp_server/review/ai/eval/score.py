"""What each case's review came to, and the metrics over a dataset.

A case is scored only when every changed unit was answered (a reply that fails the schema is
an answer: the model's bad one, counted). Findings are those the engine would show, after noise
control, with lines 1-based and inclusive. A finding hits a seeded bug when the bug's line is
within `WINDOW` lines of its range; every finding that hits nothing is a false positive.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

WINDOW = 3


@attrs.frozen
class Found:
    start_line: int
    end_line: int
    category: str
    message: str
    hit: bool
    fix_suggested: bool
    fix_valid: bool


@attrs.frozen
class UnitOutcome:
    name: str
    start_line: int
    """1-based."""
    findings: tuple[Found, ...] = ()
    bad_answer: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def silent(self) -> bool:
        return self.bad_answer is None and not self.findings


@attrs.frozen
class CaseOutcome:
    id: str
    kind: str
    changed_lines: int
    units: tuple[UnitOutcome, ...]
    unanswered: tuple[str, ...] = ()
    """Why units got no answer; a case with any is not scored."""

    @property
    def scored(self) -> bool:
        return not self.unanswered

    @property
    def findings(self) -> tuple[Found, ...]:
        return tuple(f for unit in self.units for f in unit.findings)


def hits(bug_line: int | None, start_line: int, end_line: int) -> bool:
    return bug_line is not None and start_line - WINDOW <= bug_line <= end_line + WINDOW


@attrs.frozen
class Ratio:
    part: int
    whole: int

    @property
    def value(self) -> float | None:
        return self.part / self.whole if self.whole else None


@attrs.frozen
class Metrics:
    cases: int
    bug_cases: int
    clean_cases: int
    scored: int
    units: int
    bad_answers: int
    recall: Ratio
    """Scored bug cases with a hit, of scored bug cases."""
    precision: Ratio
    """Findings that hit, of all findings."""
    false_positives: int
    changed_lines: int
    silent: Ratio
    """Units answered with no finding, of units answered."""
    fix_validation: Ratio
    """Suggested fixes (on shown findings) that passed validation, of those suggested."""
    input_tokens: int
    output_tokens: int

    @property
    def false_positives_per_100_lines(self) -> float | None:
        return 100 * self.false_positives / self.changed_lines if self.changed_lines else None


def summarise(outcomes: Sequence[CaseOutcome]) -> Metrics:
    scored = [o for o in outcomes if o.scored]
    bugs = [o for o in scored if o.kind == "bug"]
    findings = [f for o in scored for f in o.findings]
    units = [u for o in scored for u in o.units]
    true = sum(f.hit for f in findings)
    suggested = [f for f in findings if f.fix_suggested]
    return Metrics(
        cases=len(outcomes),
        bug_cases=sum(o.kind == "bug" for o in outcomes),
        clean_cases=sum(o.kind == "clean" for o in outcomes),
        scored=len(scored),
        units=len(units),
        bad_answers=sum(u.bad_answer is not None for u in units),
        recall=Ratio(sum(any(f.hit for f in o.findings) for o in bugs), len(bugs)),
        precision=Ratio(true, len(findings)),
        false_positives=len(findings) - true,
        changed_lines=sum(o.changed_lines for o in scored),
        silent=Ratio(sum(u.silent for u in units), len(units)),
        fix_validation=Ratio(sum(f.fix_valid for f in suggested), len(suggested)),
        # Tokens are spent whether or not the case could be scored.
        input_tokens=sum(u.input_tokens for o in outcomes for u in o.units),
        output_tokens=sum(u.output_tokens for o in outcomes for u in o.units),
    )
