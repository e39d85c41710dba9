"""A CI report: the findings the server published, each with the file it is in.

Findings are the server's own (`review.findings`), read back from the published diagnostics:
their positions are 0-based code points (the encoding `gantry check` negotiates, and ruff's
columns), and the reporters show them 1-based, as ruff, SARIF and GitHub do.
"""

from __future__ import annotations

from typing import Any

import attrs

from lsp_server.config import LEVELS
from lsp_server.contract import data as diagnostic_data
from lsp_server.review.findings import Edit, Finding, Fix, Position, Provenance

LOCAL_SOURCE = "gantry"
"""The source of ruff's findings; the reports name any other (an AI finding's "gantry-ai")."""


def level_rank(level: str) -> int:
    """0 for error ... 3 for hint: smaller is more severe."""
    return LEVELS.index(level)


def one_based(position: Position) -> tuple[int, int]:
    """(line, column) as reports show them."""
    return position[0] + 1, position[1] + 1


@attrs.frozen
class Reported:
    """A finding where a report lists it."""

    path: str
    """Relative to the workspace root, with forward slashes."""
    finding: Finding
    cell: int | None = None
    """In a notebook, the cell (numbered from 1 over all cells) whose lines the finding's
    positions count, as ruff reports it."""
    source: str = LOCAL_SOURCE
    """The diagnostic's source: "gantry" for ruff's findings, "gantry-ai" for the model's."""

    def at(self, path: str) -> Reported:
        """The same finding in the file `path`."""
        return Reported(path, self.finding, self.cell, self.source)

    @property
    def sort_key(self) -> tuple:
        finding = self.finding
        return (self.path, self.cell or 0, finding.start, finding.rule, finding.message)


@attrs.frozen
class Report:
    findings: tuple[Reported, ...]
    files_checked: int
    """Files sent to the server, analysed or not."""
    not_analysed: tuple[str, ...] = ()
    """Files whose diagnostics never arrived before --wait ran out."""
    ai_incomplete: tuple[tuple[str, str], ...] = ()
    """Files whose AI review did not finish (`gantry check --ai`), and why."""

    @property
    def complete(self) -> bool:
        return not self.not_analysed and not self.ai_incomplete


def _position(lsp: dict[str, int]) -> Position:
    return lsp["line"], lsp["character"]


def _fix(fix: diagnostic_data.FixData | None) -> Fix | None:
    if fix is None:
        return None
    edits = tuple(
        Edit(
            (edit.range.start.line, edit.range.start.character),
            (edit.range.end.line, edit.range.end.character),
            edit.new_text,
        )
        for edit in fix.edits
    )
    return Fix(fix.message, fix.applicability, edits)


def reported(path: str, diagnostic: dict[str, Any]) -> Reported:
    """A Diagnostic in its JSON form, as published, in a report."""
    data = diagnostic_data.read(diagnostic.get("data"))
    code = diagnostic.get("code")
    # LSP leaves a missing severity to the client; editors show it as an error, and so do we.
    severity = diagnostic.get("severity") or 1
    lsp_range = diagnostic["range"]
    finding = Finding(
        rule=str(code) if code is not None else diagnostic.get("source") or "gantry",
        message=diagnostic["message"],
        level=LEVELS[severity - 1],
        start=_position(lsp_range["start"]),
        end=_position(lsp_range["end"]),
        provenance=data.provenance if data else Provenance(diagnostic.get("source") or "gantry"),
        url=(diagnostic.get("codeDescription") or {}).get("href"),
        fix=_fix(data.fix) if data else None,
        fingerprint=data.fingerprint if data else "",
    )
    source = diagnostic.get("source") or LOCAL_SOURCE
    return Reported(path, finding, data.cell if data else None, source)
