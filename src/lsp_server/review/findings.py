"""The plain data every review engine produces and every front end (LSP, CI) consumes.

Positions are 0-based (line, column) in code points of the snapshot's text: the unit Python
strings index by. Front ends convert to their own units (UTF-16 for most LSP clients).
"""

from __future__ import annotations

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

    @property
    def lines(self) -> list[str]:
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
