"""A file that is nearly all findings (generated code, a copy-and-paste that grew): its
diagnostics arrive, all of them, in a bounded time. Fingerprinting was quadratic in findings,
and a 1,000 KiB file never got any."""

from __future__ import annotations

import json
import subprocess
import sysconfig
from pathlib import Path

import attrs
import pytest
import pytest_lsp
from lsp_harness import SERVER, diagnostics_for, initialize, open_document, write_workspace
from lsprotocol import types
from pygls.protocol import default_converter
from pygls.workspace.position_codec import PositionCodec, ServerTextPosition, ServerTextRange
from pytest_lsp import LanguageClient

from lsp_server.convert import converter, lsp_range

PYPROJECT = '[tool.ruff.lint]\nselect = ["E", "F", "W", "B"]\n'
UNIT = """\
import os, sys
def check_{n}(value):
    unused_{n} = value
    if value == None:
        return os.sep
    try:
        pass
    except:
        pass
class Item{n}:
    def size(self, other):
        same = other == None
        l = 1
        return l
"""


def dense(kib: int) -> str:
    units, size = [], 0
    while size < kib * 1024:
        units.append(UNIT.format(n=len(units)))
        size += len(units[-1])
    return "".join(units)


def ruff_findings(ws: Path, path: Path) -> list[tuple[int, str]]:
    """(line, rule) of what ruff itself reports, the rules taken from the workspace."""
    ruff = Path(sysconfig.get_path("scripts")) / "ruff"
    out = subprocess.run(
        [ruff, "check", "--output-format=json", "--exit-zero", path],
        cwd=ws,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    return sorted((item["location"]["row"] - 1, item["code"]) for item in json.loads(out))


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


async def test_a_thousand_kib_of_findings_gets_its_diagnostics(
    client: LanguageClient, tmp_path: Path
):
    ws = write_workspace(tmp_path / "ws", {"pyproject.toml": PYPROJECT, "dense.py": dense(1000)})
    await initialize(client, ws)
    diagnostics = await diagnostics_for(client, open_document(client, ws / "dense.py"), 1, 60)
    expected = ruff_findings(ws, ws / "dense.py")
    assert len(expected) > 40_000
    assert sorted((d.range.start.line, d.code) for d in diagnostics) == expected
    assert len({d.data["fingerprint"] for d in diagnostics}) == len(diagnostics)


# -- what publishing many diagnostics rests on: the same wire format, by a shorter path ----------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
def test_positions_are_the_codec_ones(encoding):
    codec = PositionCodec(types.PositionEncodingKind(encoding))
    lines = ["plain ascii\n", "naïve café = 1\n", "emoji 😀 x = y  # 😀\n", "end"]
    for line in range(len(lines) + 2):
        for character in range(0, 25, 3):
            start, end = (line, character), (line, character + 2)
            expected = codec.range_to_client_units(
                lines, ServerTextRange(ServerTextPosition(*start), ServerTextPosition(*end))
            )
            assert lsp_range(codec, lines, start, end) == expected, (line, character)


def test_diagnostics_are_unstructured_as_cattrs_does():
    position = types.Position(line=3, character=7)
    full = types.Diagnostic(
        range=types.Range(start=position, end=types.Position(line=4, character=0)),
        message="m",
        severity=types.DiagnosticSeverity.Warning,
        code=12,
        code_description=types.CodeDescription(href="https://example.com/rule"),
        source="gantry",
        tags=[types.DiagnosticTag.Unnecessary, types.DiagnosticTag.Deprecated],
        related_information=[
            types.DiagnosticRelatedInformation(
                location=types.Location(
                    uri="file:///a.py", range=types.Range(start=position, end=position)
                ),
                message="here",
            )
        ],
        data={"fingerprint": "f", "fix": {"edits": [{"newText": "x"}]}, "n": [1, None]},
    )
    bare = types.Diagnostic(range=full.range, message="only a message")
    fast, reference = converter(), default_converter()
    for diagnostic in (full, bare):
        assert fast.unstructure(diagnostic) == reference.unstructure(diagnostic)
    # A field lsprotocol adds would be left out: this says so.
    assert {field.name for field in attrs.fields(types.Diagnostic)} == {
        "range",
        "message",
        "severity",
        "code",
        "code_description",
        "source",
        "tags",
        "related_information",
        "data",
    }
