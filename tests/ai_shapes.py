"""Plain stand-ins for the AI review's inputs (review/ai/shapes.py), for tests of the prompt,
the answer parser and noise control that need a unit at a chosen place, not a parsed file."""

from __future__ import annotations

import attrs


@attrs.frozen
class Unit:
    """A unit whose text is consecutive document lines from `start_line`."""

    language: str
    kind: str
    qualified_name: str
    start_line: int
    end_line: int
    text: str

    def document_line(self, line: int) -> int:
        return self.start_line + line
