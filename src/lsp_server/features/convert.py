"""Findings -> LSP types. Positions go from code points to the client's negotiated units."""

from __future__ import annotations

from collections.abc import Sequence

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec, ServerTextPosition, ServerTextRange

from lsp_server.capabilities import ClientCaps
from lsp_server.review.findings import Edit, Finding, Position, Snapshot

SEVERITIES = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
    "hint": types.DiagnosticSeverity.Hint,
}
# Rules about code that does nothing: clients fade it out.
_UNNECESSARY = frozenset({"F401", "F841", "F811", "F842", "ARG001", "ARG002"})


def lsp_range(
    codec: PositionCodec, lines: Sequence[str], start: Position, end: Position
) -> types.Range:
    return codec.range_to_client_units(
        lines,
        ServerTextRange(ServerTextPosition(*start), ServerTextPosition(*end)),
    )


def _edit(codec: PositionCodec, lines: Sequence[str], edit: Edit) -> types.TextEdit:
    return types.TextEdit(
        range=lsp_range(codec, lines, edit.start, edit.end), new_text=edit.new_text
    )


def diagnostic(codec: PositionCodec, lines: Sequence[str], finding: Finding) -> types.Diagnostic:
    fix = None
    if finding.fix is not None:
        fix = {
            "message": finding.fix.message,
            "applicability": finding.fix.applicability,
            "edits": [
                {
                    "range": {
                        "start": {"line": e.range.start.line, "character": e.range.start.character},
                        "end": {"line": e.range.end.line, "character": e.range.end.character},
                    },
                    "newText": e.new_text,
                }
                for e in (_edit(codec, lines, edit) for edit in finding.fix.edits)
            ],
        }
    return types.Diagnostic(
        range=lsp_range(codec, lines, finding.start, finding.end),
        message=finding.message,
        severity=SEVERITIES[finding.level],
        code=finding.rule,
        code_description=types.CodeDescription(href=finding.url) if finding.url else None,
        source="gantry",
        tags=[types.DiagnosticTag.Unnecessary] if finding.rule in _UNNECESSARY else None,
        data={"fingerprint": finding.fingerprint, "fix": fix},
    )


def workspace_edit(
    caps: ClientCaps,
    codec: PositionCodec,
    snapshot: Snapshot,
    edits: Sequence[Edit],
) -> types.WorkspaceEdit:
    """Edits to one document, as versioned `documentChanges` when the client takes them."""
    lines = snapshot.lines
    text_edits = [_edit(codec, lines, edit) for edit in edits]
    if caps.document_changes:
        return types.WorkspaceEdit(
            document_changes=[
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(
                        uri=snapshot.uri, version=snapshot.version
                    ),
                    edits=text_edits,
                )
            ]
        )
    return types.WorkspaceEdit(changes={snapshot.uri: text_edits})


def replacement_edit(old: str, new: str) -> Edit:
    """One edit turning `old` into `new`, spanning only the lines that differ, so the client
    keeps cursors, folds and marks outside them."""
    old_lines, new_lines = old.splitlines(keepends=True), new.splitlines(keepends=True)
    head = 0
    while head < min(len(old_lines), len(new_lines)) and old_lines[head] == new_lines[head]:
        head += 1
    tail = 0
    while (
        tail < min(len(old_lines), len(new_lines)) - head
        and old_lines[-1 - tail] == new_lines[-1 - tail]
    ):
        tail += 1
    return Edit(
        start=(head, 0),
        end=(len(old_lines) - tail, 0),
        new_text="".join(new_lines[head : len(new_lines) - tail]),
    )
