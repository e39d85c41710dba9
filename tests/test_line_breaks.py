"""Lines are counted as ruff and LSP count them: ended by \\n, \\r\\n or \\r only. Form feeds,
\\u2028 and the other characters str.splitlines also breaks at are not line ends: a finding
after one lands where ruff says, in `gantry check` and in the editor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest_lsp
from lsp_harness import SERVER, diagnostics_for, initialize, open_document, write_workspace
from pytest_lsp import LanguageClient

from lsp_server.analysis.fingerprint import fingerprint_findings
from lsp_server.review.findings import Finding, split_lines

PYPROJECT = '[tool.ruff.lint]\nselect = ["E", "F", "W"]\n'
SOURCE = (
    "import os\n"
    "\x0c\n"  # a form feed on a line of its own (a page break, as in the standard library)
    "# a form feed \x0c and a line separator \u2028 inside a comment\n"
    "s = 'a\u2028b\x1cc\x85d'\n"
    "\x0cif s == None: pass\n"
    "if 'x\u2028y' == None: pass\n"
    "t = 1 \x0c== None\n"
    "value_with_a_long_name = [1, 2, 3] == None\n"  # str.splitlines's line 7 is one character
)
"""Findings on the lines after the separators, and after them on the same line."""


def ruff_positions(ws: Path, name: str) -> list[tuple[str, int, int]]:
    """(rule, line, column), 1-based, as ruff reports them."""
    ruff = Path(sysconfig.get_path("scripts")) / "ruff"
    out = subprocess.run(
        [ruff, "check", "--no-cache", "--output-format=json", "--exit-zero", name],
        cwd=ws,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    items = json.loads(out)
    return sorted((i["code"], i["location"]["row"], i["location"]["column"]) for i in items)


def test_split_lines_breaks_where_lsp_does():
    assert split_lines(SOURCE) == [line + "\n" for line in SOURCE.split("\n")[:-1]]
    assert split_lines("a\r\nb\rc\nd") == ["a\r\n", "b\r", "c\n", "d"]
    assert split_lines("a\nb\n") == "a\nb\n".splitlines(keepends=True)


def test_fingerprints_read_the_flagged_line():
    """A finding after a form feed is identified by its own line's text, not a neighbour's."""
    line = SOURCE.split("\n").index("t = 1 \x0c== None")
    finding = Finding("E711", "m", "info", (line, 9), (line, 13), "ruff")
    (ours,) = fingerprint_findings([finding], SOURCE, "python")
    (alone,) = fingerprint_findings([finding], "\n" * line + "t = 1 \x0c== None\n", "python")
    assert ours.fingerprint == alone.fingerprint


def test_gantry_check_reports_ruffs_positions(tmp_path):
    ws = write_workspace(tmp_path / "ws", {"pyproject.toml": PYPROJECT, "breaks.py": SOURCE})
    expected = ruff_positions(ws, "breaks.py")
    assert len(expected) >= 4 and any(line >= 6 for _, line, _ in expected)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lsp_server",
            "check",
            "breaks.py",
            "--format=json",
            "--fail-on=never",
        ],
        cwd=ws,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        check=False,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout)["findings"]
    assert sorted((f["rule"], f["line"], f["column"]) for f in findings) == expected


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


async def test_the_editor_gets_ruffs_positions(client: LanguageClient, tmp_path: Path):
    ws = write_workspace(tmp_path / "ws", {"pyproject.toml": PYPROJECT, "breaks.py": SOURCE})
    await initialize(client, ws)
    uri = open_document(client, ws / "breaks.py", text=SOURCE)
    diagnostics = await diagnostics_for(client, uri, 1)
    # every character here is one UTF-16 unit, so LSP's columns are ruff's, 0-based
    got = sorted((d.code, d.range.start.line + 1, d.range.start.character + 1) for d in diagnostics)
    assert got == ruff_positions(ws, "breaks.py")
