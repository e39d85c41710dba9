"""Noise control: which of a model's candidate findings are worth showing.

In order: a finding that repeats a local (ruff) finding on the same lines is dropped (ruff's own
is shown already, with a better fix); one the user dismissed or marked false positive (matched by
fingerprint, see fingerprint.py) is dropped; one below the minimum confidence is dropped; of
findings with one fingerprint the most confident is kept; then at most `max_per_unit` remain,
the most confident first. Every drop is kept with its reason, for the eval and for debugging.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence

import attrs

from lsp_server.review.ai.answer import Candidate
from lsp_server.review.ai.fingerprint import fingerprint, suppressed
from lsp_server.review.ai.shapes import LocalFinding, Unit

# What a ruff rule is about, in the AI categories, by longest matching prefix; rules about
# style (E, W, I, N, D, UP, ...) are in none, so only a shared message can make them a duplicate.
_RULE_CATEGORIES: dict[str, str] = {
    "F": "bug",  # undefined names, invalid comparisons, ...
    "F401": "maintainability",  # unused import
    "F811": "maintainability",  # redefined while unused
    "F841": "maintainability",  # unused variable
    "F842": "maintainability",
    "E9": "bug",
    "invalid-syntax": "bug",
    "B": "bug",
    "PLE": "bug",
    "PLW": "bug",
    "ASYNC": "bug",
    "S": "security",
    "PERF": "performance",
    "C90": "maintainability",
    "PLR": "maintainability",
    "SIM": "maintainability",
    "ARG": "maintainability",
    "ERA": "maintainability",
}
_WORD = re.compile(r"[a-z_][a-z0-9_]*")
_STOP = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "for", "from", "has", "in"}
    | {"is", "it", "its", "may", "not", "of", "on", "or", "should", "that", "the", "this", "to"}
    | {"was", "which", "will", "with"}
)
_SHARED_WORDS = 0.6  # share of the local message's words that make an AI message its repeat


@attrs.frozen
class NoisePolicy:
    """The settings of noise control (workspace-tunable)."""

    min_confidence: float = attrs.field(
        default=0.5, validator=[attrs.validators.ge(0), attrs.validators.le(1)]
    )
    max_per_unit: int = attrs.field(default=5, validator=attrs.validators.ge(0))


@attrs.frozen
class Kept:
    candidate: Candidate
    fingerprint: str


@attrs.frozen
class Dropped:
    candidate: Candidate
    reason: str


@attrs.frozen
class Filtered:
    kept: tuple[Kept, ...]
    """Most confident first."""
    dropped: tuple[Dropped, ...]


def filter_findings(
    candidates: Iterable[Candidate],
    unit: Unit,
    local: Sequence[LocalFinding] = (),
    verdicts: Mapping[str, str] | Collection[str] = frozenset(),
    policy: NoisePolicy = NoisePolicy(),
) -> Filtered:
    """The candidates worth showing for `unit`: `local` are the local findings in the same
    document (document lines), `verdicts` the user's verdicts by fingerprint (or the set of
    suppressed fingerprints)."""
    dropped: list[Dropped] = []
    best: dict[str, Kept] = {}
    for candidate in candidates:
        duplicate = _local_duplicate(candidate, unit, local)
        key = fingerprint(candidate, unit)
        if duplicate is not None:
            dropped.append(Dropped(candidate, f"repeats {duplicate.rule} on the same lines"))
        elif suppressed(key, verdicts):
            dropped.append(Dropped(candidate, "the user dismissed this finding"))
        elif candidate.confidence < policy.min_confidence:
            dropped.append(
                Dropped(
                    candidate, f"confidence {candidate.confidence:g} < {policy.min_confidence:g}"
                )
            )
        elif key in best and best[key].candidate.confidence >= candidate.confidence:
            dropped.append(Dropped(candidate, "same finding as a more confident one"))
        else:
            if key in best:
                dropped.append(Dropped(best[key].candidate, "same finding as a more confident one"))
            best[key] = Kept(candidate, key)
    # sorted() is stable: of equally confident findings, the model's order is kept
    ranked = sorted(best.values(), key=lambda kept: -kept.candidate.confidence)
    for kept in ranked[policy.max_per_unit :]:
        dropped.append(Dropped(kept.candidate, f"over the cap of {policy.max_per_unit} per unit"))
    return Filtered(tuple(ranked[: policy.max_per_unit]), tuple(dropped))


def _local_duplicate(
    candidate: Candidate, unit: Unit, local: Sequence[LocalFinding]
) -> LocalFinding | None:
    """A local finding on lines the candidate also flags, about the same thing: the AI text
    names its rule, or repeats most of its message's words, or the rule is of the candidate's
    category and the two share a word (ruff's messages name the identifier they are about).
    An AI bug on a line ruff flags for line length, or for another name, is not a repeat."""
    first, last = candidate.document_lines(unit)
    said = f"{candidate.message} {candidate.rationale}"
    for finding in local:
        if finding.end_line < first or finding.start_line > last:
            continue
        if finding.rule and finding.rule.lower() in said.lower():
            return finding
        words = _words(finding.message)
        shared = words & _words(said)
        if words and len(shared) >= _SHARED_WORDS * len(words):
            return finding
        if shared and rule_category(finding.rule) == candidate.category:
            return finding
    return None


def rule_category(rule: str) -> str | None:
    """The AI category a local rule is about, or None for style rules."""
    for end in range(len(rule), 0, -1):
        if (category := _RULE_CATEGORIES.get(rule[:end])) is not None:
            return category
    return None


def _words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP}


def _stem(word: str) -> str:
    # enough to make "imported"/"import", "unused"/"unuse"... meet; not a linguistic stemmer
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word
