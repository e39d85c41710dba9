"""Findings -> LSP types. Positions go from code points to the client's negotiated units."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import cattrs
from lsprotocol import types
from pygls.protocol import default_converter
from pygls.workspace.position_codec import PositionCodec, ServerTextPosition

from lsp_server.capabilities import ClientCaps
from lsp_server.contract import converter as contract
from lsp_server.review.findings import Edit, Finding, Position, Provenance, Snapshot, split_lines

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


def source_of(finding: Finding) -> str:
    """ "gantry" for the local review, "gantry-<engine>" for the others (AI review: "gantry-ai")."""
    engine = finding.provenance.engine
    return "gantry" if engine == "ruff" else f"gantry-{engine}"


def _point(codec: PositionCodec, lines: Sequence[str], position: Position) -> dict[str, int]:
    line, character = _client_units(codec, lines, position)
    return {"line": line, "character": character}


@functools.lru_cache(maxsize=64)
def _provenance_json(provenance: Provenance) -> dict[str, Any]:
    """Shared by every finding of a review (never modified: only encoded)."""
    return contract.unstructure(provenance)


def diagnostic_json(
    codec: PositionCodec, lines: Sequence[str], finding: Finding, cells: dict[int, int] | None
) -> dict[str, Any]:
    """A finding as a Diagnostic in its JSON form (positions in the client's units; in a
    notebook, counted from the start of its cell, whose number goes in its data), built
    directly: a finding-dense file or a whole tree publishes tens of thousands, and building
    lsprotocol's validated classes to unstructure them costs five times as much
    (tests/test_convert.py holds the two ways equal)."""
    fix = None
    if finding.fix is not None:
        edits = [
            {
                "range": {
                    "start": _point(codec, lines, edit.start),
                    "end": _point(codec, lines, edit.end),
                },
                "newText": edit.new_text,
            }
            for edit in finding.fix.edits
        ]
        fix = {
            "message": finding.fix.message,
            "applicability": finding.fix.applicability,
            "edits": edits,
        }
    out: dict[str, Any] = {
        "range": {
            "start": _point(codec, lines, finding.start),
            "end": _point(codec, lines, finding.end),
        },
        "message": finding.message,
        "severity": SEVERITIES[finding.level].value,
        "code": finding.rule,
    }
    if finding.url:
        out["codeDescription"] = {"href": finding.url}
    out["source"] = source_of(finding)
    if finding.rule in _UNNECESSARY:
        out["tags"] = [types.DiagnosticTag.Unnecessary.value]
    out["data"] = {
        "fingerprint": finding.fingerprint,
        "fix": fix,
        "provenance": _provenance_json(finding.provenance),
    }
    if cells:
        _shift_into_cell(out, cells)
    return out


def _shift_into_cell(out: dict[str, Any], cells: dict[int, int]) -> None:
    """A notebook's diagnostic as ruff reports it: lines counted from the start of its cell."""
    start = out["range"]["start"]["line"]
    number, first = max(
        ((n, line) for n, line in cells.items() if line <= start),
        key=lambda item: item[1],
        default=(0, 0),
    )
    ranges = [out["range"]]
    if out["data"]["fix"] is not None:
        ranges += [edit["range"] for edit in out["data"]["fix"]["edits"]]
    for span in ranges:
        span["start"]["line"] -= first
        span["end"]["line"] -= first
    out["data"]["cell"] = number


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
