"""The plain data every review engine produces and every front end (LSP, CI) consumes.

Positions are 0-based (line, column) in code points of the snapshot's text: the unit Python
strings index by. Front ends convert to their own units (UTF-16 for most LSP clients).
"""

from __future__ import annotations

from typing import Literal

import attrs

from lsp_server.config import Level, Settings

Position = tuple[int, int]
Applicability = Literal["safe", "unsafe"]


@attrs.frozen
class Snapshot:
    """An immutable view of one document: what engines run on, off the event loop."""

    uri: str
    path: str
    version: int | None
    text: str
    language: str | None
    settings: Settings

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines(keepends=True)


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
class Finding:
    rule: str
    message: str
    level: Level
    start: Position
    end: Position
    engine: str
    url: str | None = None
    fix: Fix | None = None
    fingerprint: str = ""
