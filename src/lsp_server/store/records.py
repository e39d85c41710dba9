"""Plain records the store reads and writes. The store never parses: callers hand it these."""

from __future__ import annotations

import time
from typing import Literal

import attrs

VerdictKind = Literal["dismissed", "false_positive", "accepted"]
VERDICT_KINDS: frozenset[str] = frozenset(("dismissed", "false_positive", "accepted"))


def _known_verdict(_instance: object, _attribute: object, value: str) -> None:
    if value not in VERDICT_KINDS:
        raise ValueError(f"unknown verdict {value!r}; expected one of {sorted(VERDICT_KINDS)}")


@attrs.frozen
class Verdict:
    """The user's word on one finding, remembered by the finding's fingerprint."""

    fingerprint: str
    verdict: VerdictKind = attrs.field(validator=_known_verdict)
    rule: str = ""
    path: str = ""
    message: str = ""
    created_at: float = attrs.field(factory=time.time)


@attrs.frozen
class FileState:
    """What the store last recorded for a workspace file."""

    content_hash: str
    size: int
    mtime_ns: int


@attrs.frozen
class FileRecord:
    path: str
    """Relative to the workspace root, with forward slashes."""
    content_hash: str
    language: str
    size: int
    mtime_ns: int


@attrs.frozen
class SymbolRecord:
    name: str
    kind: str
    container: str | None
    start_line: int
    """Zero-based lines; columns are UTF-8 byte offsets within the line (tree-sitter points)."""
    start_col: int
    end_line: int
    end_col: int
    signature: str
    docstring: str | None
    symbol_hash: str
    """Content hash of the symbol's own text: unchanged when edits happen elsewhere in the file."""
    refs: tuple[str, ...] = ()
    """The distinct identifiers the symbol's body uses (outside nested symbols)."""


@attrs.frozen
class ContentRecord:
    """Everything derived from one file content, stored once whatever the paths holding it."""

    content_hash: str
    language: str
    lines: int
    bytes: int
    symbols: tuple[SymbolRecord, ...] = ()


@attrs.frozen
class SymbolHit:
    """A stored symbol located in a workspace file."""

    path: str
    name: str
    kind: str
    container: str | None
    start_line: int
    start_col: int
    end_line: int
    end_col: int
    signature: str
    docstring: str | None


@attrs.frozen
class SymbolUses:
    """A stored symbol, located, with the identifiers its body uses: one node of a repo map."""

    hit: SymbolHit
    refs: tuple[str, ...]


@attrs.frozen
class CachedReview:
    """One AI review result, stored by its cache key (see review/ai/cache.py). The store keeps
    the answer as the caller serialised it and never looks inside."""

    key: str
    answer: str
    """Opaque JSON text: the findings (possibly none: "clean") and their provenance."""
    model: str
    prompt_version: str
    created_at: float
    read_at: float
    """When a review last used it, to the hour: entries unread for long are pruned."""


@attrs.frozen
class TestgenRun:
    """One test-generation run's funnel: what the user saw as its summary, kept so that runs
    can be compared over time. `report` is the funnel report, as JSON text."""

    __test__ = False  # not a pytest test class, whatever its name

    path: str
    """The target file, relative to the workspace root."""
    symbols: tuple[str, ...]
    kept: int
    possible_bugs: int
    seconds: float
    tokens: int
    report: str
    started_at: float = attrs.field(factory=time.time)
    id: int | None = None
    """Set by the store."""
