"""Findings -> LSP types. Positions go from code points to the client's negotiated units."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import attrs
import cattrs
from lsprotocol import types
from pygls.protocol import default_converter
from pygls.workspace.position_codec import PositionCodec, ServerTextPosition

from lsp_server.capabilities import ClientCaps
from lsp_server.contract import converter as contract
from lsp_server.contract import data
from lsp_server.review.findings import Edit, Finding, Position, Snapshot, split_lines

SEVERITIES = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
    "hint": types.DiagnosticSeverity.Hint,
}
# Rules about code that does nothing: clients fade it out.
_UNNECESSARY = frozenset({"F401", "F841", "F811", "F842", "ARG001", "ARG002"})


def _client_units(
    codec: PositionCodec, lines: Sequence[str], position: Position
) -> tuple[int, int]:
    line, character = position
    if line < len(lines):
        prefix = lines[line][:character]
        if prefix.isascii():  # the same in every encoding, and most code is: no codec per char
            return line, len(prefix)
    converted = codec.position_to_client_units(lines, ServerTextPosition(line, character))
    return converted.line, converted.character


def lsp_range(
    codec: PositionCodec, lines: Sequence[str], start: Position, end: Position
) -> types.Range:
    (start_line, start_char), (end_line, end_char) = (
        _client_units(codec, lines, start),
        _client_units(codec, lines, end),
    )
    return types.Range(
        start=types.Position(line=start_line, character=start_char),
        end=types.Position(line=end_line, character=end_char),
    )


def _edit(codec: PositionCodec, lines: Sequence[str], edit: Edit) -> types.TextEdit:
    return types.TextEdit(
        range=lsp_range(codec, lines, edit.start, edit.end), new_text=edit.new_text
    )


def _data_edit(codec: PositionCodec, lines: Sequence[str], edit: Edit) -> data.TextEdit:
    (start_line, start_char), (end_line, end_char) = (
        _client_units(codec, lines, edit.start),
        _client_units(codec, lines, edit.end),
    )
    return data.TextEdit(
        data.Range(data.Position(start_line, start_char), data.Position(end_line, end_char)),
        edit.new_text,
    )


def source_of(finding: Finding) -> str:
    """ "gantry" for the local review, "gantry-<engine>" for the others (AI review: "gantry-ai")."""
    engine = finding.provenance.engine
    return "gantry" if engine == "ruff" else f"gantry-{engine}"


def diagnostic(codec: PositionCodec, lines: Sequence[str], finding: Finding) -> types.Diagnostic:
    fix = None
    if finding.fix is not None:
        edits = tuple(_data_edit(codec, lines, edit) for edit in finding.fix.edits)
        fix = data.FixData(finding.fix.message, finding.fix.applicability, edits)
    return types.Diagnostic(
        range=lsp_range(codec, lines, finding.start, finding.end),
        message=finding.message,
        severity=SEVERITIES[finding.level],
        code=finding.rule,
        code_description=types.CodeDescription(href=finding.url) if finding.url else None,
        source=source_of(finding),
        tags=[types.DiagnosticTag.Unnecessary] if finding.rule in _UNNECESSARY else None,
        data=data.DiagnosticData(finding.fingerprint, fix, finding.provenance),
    )


def in_cell(diagnostic: types.Diagnostic, cells: dict[int, int]) -> types.Diagnostic:
    """A notebook's diagnostic as ruff reports it: lines counted from the start of its cell,
    whose number goes in its data."""
    number, first = max(
        ((n, line) for n, line in cells.items() if line <= diagnostic.range.start.line),
        key=lambda item: item[1],
        default=(0, 0),
    )

    def up(span: Any) -> Any:  # LSP's Range or the data's: attrs classes of the same shape
        start, end = span.start, span.end
        return attrs.evolve(
            span,
            start=attrs.evolve(start, line=start.line - first),
            end=attrs.evolve(end, line=end.line - first),
        )

    diagnostic.range = up(diagnostic.range)
    found: data.DiagnosticData = diagnostic.data
    fix = found.fix
    if fix is not None:
        fix = attrs.evolve(fix, edits=tuple(attrs.evolve(e, range=up(e.range)) for e in fix.edits))
    diagnostic.data = attrs.evolve(found, fix=fix, cell=number)
    return diagnostic


def converter() -> cattrs.Converter:
    """pygls's converter, with diagnostics unstructured by hand: its generic path costs ~30 us
    each, most of a finding-dense file's publishing time."""
    base = default_converter()
    base.register_unstructure_hook(types.Diagnostic, functools.partial(_diagnostic_json, base))
    return base


def _diagnostic_json(base: cattrs.Converter, d: types.Diagnostic) -> dict[str, Any]:
    """What `base` makes of a Diagnostic, with `data` (Gantry's, or what a client sent back)
    by the contract's converter."""
    start, end = d.range.start, d.range.end
    out: dict[str, Any] = {
        "range": {
            "start": {"line": start.line, "character": start.character},
            "end": {"line": end.line, "character": end.character},
        },
        "message": d.message,
    }
    if d.severity is not None:
        out["severity"] = d.severity.value
    if d.code is not None:
        out["code"] = d.code
    if d.code_description is not None:
        out["codeDescription"] = {"href": d.code_description.href}
    if d.source is not None:
        out["source"] = d.source
    if d.tags is not None:
        out["tags"] = [tag.value for tag in d.tags]
    if d.related_information is not None:
        out["relatedInformation"] = base.unstructure(d.related_information)
    if d.data is not None:
        out["data"] = contract.unstructure(d.data)
    return out


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
    old_lines, new_lines = split_lines(old), split_lines(new)  # LSP's lines
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
