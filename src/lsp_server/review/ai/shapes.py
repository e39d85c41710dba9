"""The shapes the AI review modules read from units, context packs, verdicts and local findings.

Protocols, so that whichever records the unit splitter, the context builder and the store
produce fit without these modules importing them.

Line numbers here are 0-based document lines, both ends inclusive. A unit's text is whole lines
(`start_line` to `end_line`), so a column in the unit is a column in the document.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from lsp_server.review.findings import split_lines


class Unit(Protocol):
    """A function, method, class or block of top-level statements under review."""

    @property
    def language(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def qualified_name(self) -> str: ...
    @property
    def start_line(self) -> int: ...
    @property
    def end_line(self) -> int: ...
    @property
    def text(self) -> str: ...

    def document_line(self, line: int) -> int:
        """The document line (0-based) of line `line` (0-based) of `text`: a class unit's text
        leaves out its methods, so its lines are not always consecutive in the document."""
        ...


class ContextItem(Protocol):
    """One piece of context: a definition, a caller, a test, local diagnostics, ..."""

    @property
    def kind(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def text(self) -> str: ...


class ContextPack(Protocol):
    @property
    def items(self) -> Sequence[ContextItem]: ...
    @property
    def digest(self) -> str: ...


class PastVerdict(Protocol):
    """What the user said about an earlier AI finding in the same file."""

    @property
    def verdict(self) -> str: ...  # "dismissed" | "false-positive" | "accepted"
    @property
    def category(self) -> str: ...
    @property
    def qualified_name(self) -> str: ...
    @property
    def message(self) -> str: ...


class LocalFinding(Protocol):
    """A local engine's (ruff's) finding, in document lines."""

    @property
    def rule(self) -> str: ...
    @property
    def start_line(self) -> int: ...
    @property
    def end_line(self) -> int: ...
    @property
    def message(self) -> str: ...


def unit_lines(text: str) -> list[str]:
    """A unit's lines without their endings, counted as LSP and ruff count them (str.splitlines
    would also break at form feeds, and so disagree with the editor's line numbers)."""
    return [line.rstrip("\r\n") for line in split_lines(text)]
