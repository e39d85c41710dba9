"""The plain data every review engine produces and every front end (LSP, CI) consumes.

Positions are 0-based (line, column) in code points of the snapshot's text: the unit Python
strings index by. Front ends convert to their own units (UTF-16 for most LSP clients).
"""

from __future__ import annotations

import datetime
import functools
import re
from typing import Literal

import attrs

from lsp_server.config import Level, Settings

Position = tuple[int, int]
Applicability = Literal["safe", "unsafe"]
_LINE = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+\Z")
_ASCII_BREAKS = ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e")
_OTHER_BREAKS = ("\x85", "\u2028", "\u2029")


def split_lines(text: str) -> list[str]:
    """Lines (with their ends) as ruff counts its rows and LSP its lines: ended by \\n, \\r\\n
    or \\r only, where str.splitlines also breaks at form feeds, \\x1c-\\x1e, \\u2028 and more."""
    if not any(c in text for c in _ASCII_BREAKS) and (
        text.isascii() or not any(c in text for c in _OTHER_BREAKS)
    ):
        return text.splitlines(keepends=True)  # the same lines, several times faster
    return _LINE.findall(text)


@attrs.frozen
class Snapshot:
    """An immutable view of one document: what engines run on, off the event loop."""

    uri: str
    path: str
    version: int | None
    text: str
    language: str | None
    settings: Settings

    @functools.cached_property
    def lines(self) -> list[str]:
        """Split once, by whichever engine needs them first (off the loop): the publisher and
        every engine that reviews this very snapshot reuse them. Do not modify."""
        return split_lines(self.text)


@attrs.frozen
class Edit:
    start: Position
    end: Position
    new_text: str


@attrs.frozen
class Fix:
    message: str
    applicability: Applicability
    edits: tuple[Edit, ...]


@attrs.frozen
class Provenance:
    """Where a finding comes from: enough to judge it, reproduce it, or tell that it is stale.
    Engines fill in what they have; ruff has a name and a version. Shared by every finding of
    one review, and sent with each in `Diagnostic.data`."""

    engine: str
    """"ruff", or the name of the AI engine."""
    version: str | None = None
    """The engine's own version, as it reports it."""
    model: str | None = None
    endpoint: str | None = None
    """The endpoint that answered, by its configured name (never its URL or key)."""
    prompt_version: str | None = None
    cached: bool | None = None
    """True for an answer from the cache, False for one asked for now; None where nothing is
    cached."""
    at: datetime.datetime | None = None
    """When the answer was produced; None for engines that run on every review."""
    context: tuple[str, ...] = ()
    """The symbols (qualified names) the model was shown besides the code under review."""
    tokens: int | None = None
    """Tokens the answer cost, prompt and completion together."""


@attrs.frozen
class Finding:
    rule: str
    message: str
    level: Level
    start: Position
    end: Position
    provenance: Provenance
    url: str | None = None
    fix: Fix | None = None
    fingerprint: str = ""

    def with_fingerprint(self, fingerprint: str) -> Finding:
        """attrs.evolve, spelled out: it costs a third of the time, for every finding."""
        return Finding(
            self.rule,
            self.message,
            self.level,
            self.start,
            self.end,
            self.provenance,
            self.url,
            self.fix,
            fingerprint,
        )
