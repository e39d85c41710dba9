"""`Diagnostic.data`: what a published diagnostic carries besides LSP's own fields.

Editors read `fingerprint` (to dismiss a finding) and send the whole of it back in code action
requests; `gantry check` reads all of it. Positions in `fix` are the client's (its negotiated
encoding, and in a notebook counted from the start of `cell`), like the diagnostic's range.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from lsp_server.contract.converter import ContractError, intern, structure
from lsp_server.review.findings import Applicability, Provenance

log = logging.getLogger("gantry.contract")


# LSP's shapes, declared here so the CI client need not import lsprotocol (~350 ms).
@attrs.frozen
class Position:
    line: int
    character: int


@attrs.frozen
class Range:
    start: Position
    end: Position


@attrs.frozen
class TextEdit:
    range: Range
    new_text: str


@attrs.frozen
class FixData:
    """A finding's fix as the client's edits."""

    message: str
    applicability: Applicability
    edits: tuple[TextEdit, ...]


@attrs.frozen
class DiagnosticData:
    fingerprint: str
    """Identifies the finding across edits elsewhere in the file; empty when not computed."""
    fix: FixData | None
    provenance: Provenance
    cell: int | None = None
    """In a notebook, the cell (numbered from 1 over all cells) whose lines the diagnostic's
    range counts, as ruff reports it."""


intern(Provenance)


def read(data: Any) -> DiagnosticData | None:
    """A diagnostic's `data` as Gantry wrote it; None when it is missing or not Gantry's (a
    client may send back anything)."""
    if data is None:
        return None
    try:
        return structure(data, DiagnosticData, explain=False)
    except ContractError as exc:
        log.debug("diagnostic data that is not Gantry's: %s", exc)
        return None
