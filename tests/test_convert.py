"""Diagnostics as published: the direct JSON path equals lsprotocol's classes unstructured by
the server's converter, in every encoding, with fixes, tags, links and notebook cells."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from lsp_server import convert
from lsp_server.contract import data
from lsp_server.review.findings import Edit, Finding, Fix, Provenance, split_lines

TEXT = "import os\ns = 'é😀' == None  # x\nx = 1\n\ny = 2\n"
RUFF = Provenance("ruff", "0.17.6")
AI = Provenance("ai", model="m", endpoint="local", prompt_version="3", cached=True)
FINDINGS = [
    Finding(
        "F401",
        "`os` imported but unused",
        "warning",
        (0, 7),
        (0, 9),
        RUFF,
        "https://docs.astral.sh/ruff/rules/unused-import",
        Fix("Remove unused import", "safe", (Edit((0, 0), (1, 0), ""),)),
        "abc",
    ),
    Finding(
        "E711",
        "Comparison to `None`",
        "info",
        (1, 7),
        (1, 17),
        RUFF,
        None,
        Fix("Replace", "unsafe", (Edit((1, 4), (1, 17), "x is None"), Edit((2, 0), (2, 1), "z"))),
    ),
    Finding("bug", "Looks wrong", "error", (4, 0), (5, 0), AI),
    Finding("E501", "Line too long", "hint", (1, 12), (1, 30), RUFF),
]


def _diagnostic(codec: PositionCodec, lines: list[str], finding: Finding) -> types.Diagnostic:
    """The way round lsprotocol's classes, as a Diagnostic is written field by field."""

    def span(start, end) -> data.Range:
        converted = convert.lsp_range(codec, lines, start, end)
        first, last = converted.start, converted.end
        return data.Range(
            data.Position(first.line, first.character), data.Position(last.line, last.character)
        )

    fix = None
    if finding.fix is not None:
        edits = tuple(data.TextEdit(span(e.start, e.end), e.new_text) for e in finding.fix.edits)
        fix = data.FixData(finding.fix.message, finding.fix.applicability, edits)
    return types.Diagnostic(
        range=convert.lsp_range(codec, lines, finding.start, finding.end),
        message=finding.message,
        severity=convert.SEVERITIES[finding.level],
        code=finding.rule,
        code_description=types.CodeDescription(href=finding.url) if finding.url else None,
        source=convert.source_of(finding),
        tags=[types.DiagnosticTag.Unnecessary] if finding.rule in ("F401", "F841") else None,
        data=data.DiagnosticData(finding.fingerprint, fix, finding.provenance),
    )


def _in_cell(diagnostic: types.Diagnostic, cells: dict[int, int]) -> types.Diagnostic:
    number, first = max(
        (n, line) for n, line in cells.items() if line <= diagnostic.range.start.line
    )

    def up(span: Any) -> Any:
        start, end = span.start, span.end
        return attrs.evolve(
            span,
            start=attrs.evolve(start, line=start.line - first),
            end=attrs.evolve(end, line=end.line - first),
        )

    found = diagnostic.data
    fix = found.fix and attrs.evolve(
        found.fix, edits=tuple(attrs.evolve(e, range=up(e.range)) for e in found.fix.edits)
    )
    return attrs.evolve(
        diagnostic, range=up(diagnostic.range), data=attrs.evolve(found, fix=fix, cell=number)
    )


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
@pytest.mark.parametrize("cells", [None, {1: 0, 3: 2}], ids=["file", "notebook"])
def test_diagnostic_json_is_what_the_converter_writes(encoding, cells):
    codec = PositionCodec(types.PositionEncodingKind(encoding))
    lines, converter = split_lines(TEXT), convert.converter()
    for finding in FINDINGS:
        built = _diagnostic(codec, lines, finding)
        if cells:
            built = _in_cell(built, cells)
        expected = converter.unstructure(built)
        assert convert.diagnostic_json(codec, lines, finding, cells) == expected
