"""Report records: what one published diagnostic means to a CI report.

Positions are 1-based lines and 1-based columns in characters (code points: the encoding
`gantry check` negotiates, and ruff's columns); end columns are exclusive, as in LSP and SARIF.
"""

from __future__ import annotations

from typing import Any

import attrs

LEVELS: tuple[str, ...] = ("error", "warning", "info", "hint")
"""Most severe first; LSP severities 1..4 in order."""


def level_rank(level: str) -> int:
    """0 for error ... 3 for hint: smaller is more severe."""
    return LEVELS.index(level)


@attrs.frozen
class Span:
    line: int
    column: int
    end_line: int
    end_column: int

    @classmethod
    def from_lsp(cls, lsp_range: dict[str, Any]) -> Span:
        """From an LSP Range in its JSON form."""
        start, end = lsp_range["start"], lsp_range["end"]
        return cls(start["line"] + 1, start["character"] + 1, end["line"] + 1, end["character"] + 1)


@attrs.frozen
class FixEdit:
    span: Span
    new_text: str


@attrs.frozen
class Fix:
    message: str
    applicability: str
    """"safe" or "unsafe"."""
    edits: tuple[FixEdit, ...]

    @property
    def is_safe(self) -> bool:
        return self.applicability == "safe"


@attrs.frozen
class Finding:
    path: str
    """Relative to the workspace root, with forward slashes."""
    span: Span
    level: str
    rule: str
    message: str
    url: str | None = None
    fingerprint: str | None = None
    fix: Fix | None = None
    cell: int | None = None
    """In a notebook, the cell (numbered from 1 over all cells) whose lines `span` counts, as
    ruff reports it."""

    @property
    def sort_key(self) -> tuple:
        return (
            self.path,
            self.cell or 0,
            self.span.line,
            self.span.column,
            self.rule,
            self.message,
        )


@attrs.frozen
class Report:
    findings: tuple[Finding, ...]
    files_checked: int
    """Files sent to the server, analysed or not."""
    not_analysed: tuple[str, ...] = ()
    """Files whose diagnostics never arrived before --wait ran out."""

    @property
    def complete(self) -> bool:
        return not self.not_analysed


def _fix(data: Any) -> Fix | None:
    fix = data.get("fix") if isinstance(data, dict) else None
    if not fix:
        return None
    edits = tuple(
        FixEdit(Span.from_lsp(edit["range"]), edit["newText"]) for edit in fix.get("edits", ())
    )
    return Fix(fix.get("message", ""), fix.get("applicability", "unsafe"), edits)


def finding_from_diagnostic(path: str, diagnostic: dict[str, Any]) -> Finding:
    """A Diagnostic in its JSON form, as published, as a report record."""
    data = diagnostic.get("data")
    data = data if isinstance(data, dict) else {}
    code = diagnostic.get("code")
    # LSP leaves a missing severity to the client; editors show it as an error, and so do we.
    severity = diagnostic.get("severity") or 1
    return Finding(
        path=path,
        span=Span.from_lsp(diagnostic["range"]),
        level=LEVELS[severity - 1],
        rule=str(code) if code is not None else diagnostic.get("source") or "gantry",
        message=diagnostic["message"],
        url=(diagnostic.get("codeDescription") or {}).get("href"),
        fingerprint=data.get("fingerprint") or None,
        fix=_fix(data),
        cell=data.get("cell"),
    )
