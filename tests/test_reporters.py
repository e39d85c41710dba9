"""The `gantry check` reporters, on hand-made records."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from lsp_server import __version__
from lsp_server.contract import data
from lsp_server.contract.converter import unstructure
from lsp_server.headless.report import Report, Reported, reported
from lsp_server.headless.reporters import render
from lsp_server.headless.reporters.github import escape_data, escape_property
from lsp_server.headless.reporters.summary import summary_line
from lsp_server.review.findings import Edit, Finding, Fix, Provenance

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-2.1.0-schema.json").read_text())
ROOT = Path("/work/project")
RUFF = Provenance("ruff", "0.17.6")
AI = Provenance("gantry-ai", model="m-1", endpoint="gpu-box", prompt_version="3", cached=False)


def finding(path: str, start, end, level, rule, message, **more) -> Reported:
    """A report entry; positions 0-based, as findings hold them (reports show them 1-based)."""
    cell = more.pop("cell", None)
    more.setdefault("provenance", RUFF)
    return Reported(path, Finding(rule, message, level, start, end, **more), cell)


UNUSED_IMPORT = finding(
    "pkg/mod.py",
    (0, 7),
    (0, 9),
    "error",
    "F401",
    "`os` imported but unused",
    url="https://docs.astral.sh/ruff/rules/unused-import",
    fingerprint="fp-f401",
    fix=Fix("Remove unused import: `os`", "safe", (Edit((0, 0), (1, 0), ""),)),
)
LONG_LINE = finding(
    "a b.py",
    (2, 100),
    (2, 119),
    "warning",
    "E501",
    "Line too long (119 > 100)",
    url="https://docs.astral.sh/ruff/rules/line-too-long",
    fingerprint="fp-e501",
)
UNSAFE_FIX = finding(
    "pkg/mod.py",
    (6, 4),
    (6, 5),
    "info",
    "F841",
    "Local variable `x` is assigned to but never used",
    fingerprint="fp-f841",
    fix=Fix("Remove assignment to unused variable `x`", "unsafe", (Edit((6, 4), (6, 8), ""),)),
)
HINT = finding(
    "pkg/mod.py",
    (1, 0),
    (1, 0),
    "hint",
    "AI001",
    "Consider a docstring:\nit explains why, 100% of the time",
    provenance=AI,
)
REPORT = Report((UNUSED_IMPORT, LONG_LINE, UNSAFE_FIX, HINT), files_checked=3)


def test_text_lists_findings_sorted_with_fixable_marker_and_summary():
    lines = render(REPORT, "text", ROOT).splitlines()
    assert lines == [
        "a b.py:3:101: warning E501 Line too long (119 > 100)",
        "pkg/mod.py:1:8: error F401 `os` imported but unused [*]",
        "pkg/mod.py:2:1: hint AI001 Consider a docstring: it explains why, 100% of the time",
        "pkg/mod.py:7:5: info F841 Local variable `x` is assigned to but never used",
        "4 findings (1 error, 1 warning, 2 info) in 3 files; 1 fixable",
    ]


def test_text_without_findings_says_so():
    assert render(Report((), files_checked=1), "text", ROOT) == "No findings in 1 file.\n"
    assert summary_line(Report((), files_checked=0)) == "No findings in 0 files."


def test_json_is_a_stable_versioned_document():
    document = json.loads(render(REPORT, "json", ROOT))
    assert document["version"] == 1
    assert [finding["rule"] for finding in document["findings"]] == [
        "E501",
        "F401",
        "AI001",
        "F841",
    ]
    assert document["findings"][1] == {
        "path": "pkg/mod.py",
        "cell": None,
        "line": 1,
        "column": 8,
        "endLine": 1,
        "endColumn": 10,
        "level": "error",
        "rule": "F401",
        "message": "`os` imported but unused",
        "url": "https://docs.astral.sh/ruff/rules/unused-import",
        "fingerprint": "fp-f401",
        "fix": {
            "message": "Remove unused import: `os`",
            "applicability": "safe",
            "edits": [{"line": 1, "column": 1, "endLine": 2, "endColumn": 1, "newText": ""}],
        },
        "provenance": {"engine": "ruff", "version": "0.17.6"},
    }
    assert document["findings"][2]["provenance"] == {
        "engine": "gantry-ai",
        "model": "m-1",
        "endpoint": "gpu-box",
        "promptVersion": "3",
        "cached": False,
    }
    assert document["findings"][2]["fingerprint"] is None
    assert document["summary"] == {
        "findings": 4,
        "errors": 1,
        "warnings": 1,
        "info": 1,
        "hints": 1,
        "fixable": 1,
        "files": 3,
        "complete": True,
        "notAnalysed": [],
    }
    assert render(REPORT, "json", ROOT) == render(REPORT, "json", ROOT)


@pytest.mark.parametrize(
    "report",
    [
        REPORT,
        Report((), files_checked=0),
        Report((LONG_LINE,), files_checked=2, not_analysed=("late.py",)),
    ],
    ids=["findings", "empty", "incomplete"],
)
def test_sarif_is_valid_against_the_official_schema(report):
    log = json.loads(render(report, "sarif", ROOT))
    jsonschema.validate(log, SCHEMA, cls=jsonschema.Draft4Validator)
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-schema-2.1.0.json")


def test_sarif_content():
    run = json.loads(render(REPORT, "sarif", ROOT))["runs"][0]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("gantry", __version__)
    assert [rule["id"] for rule in driver["rules"]] == ["AI001", "E501", "F401", "F841"]
    assert driver["rules"][2]["helpUri"] == "https://docs.astral.sh/ruff/rules/unused-import"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == "file:///work/project/"

    by_rule = {result["ruleId"]: result for result in run["results"]}
    for result in run["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    assert [by_rule[rule]["level"] for rule in ("F401", "E501", "F841", "AI001")] == [
        "error",
        "warning",
        "note",
        "note",
    ]
    location = by_rule["E501"]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "a%20b.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {
        "startLine": 3,
        "startColumn": 101,
        "endLine": 3,
        "endColumn": 120,
    }
    assert by_rule["F401"]["partialFingerprints"] == {"gantry/v1": "fp-f401"}
    assert by_rule["F401"]["message"]["text"] == "`os` imported but unused"
    (fix,) = by_rule["F401"]["fixes"]
    assert fix["description"]["text"] == "Remove unused import: `os`"
    (change,) = fix["artifactChanges"]
    assert change["artifactLocation"]["uri"] == "pkg/mod.py"
    assert change["replacements"] == [
        {
            "deletedRegion": {"startLine": 1, "startColumn": 1, "endLine": 2, "endColumn": 1},
            "insertedContent": {"text": ""},
        }
    ]
    assert "fixes" not in by_rule["E501"]
    assert "partialFingerprints" not in by_rule["AI001"]


def test_github_annotations():
    lines = render(REPORT, "github", ROOT).splitlines()
    assert lines[0] == (
        "::warning file=a b.py,line=3,col=101,endLine=3,endColumn=120,title=E501"
        "::Line too long (119 > 100)"
    )
    assert lines[1].startswith("::error file=pkg/mod.py,line=1,col=8,")
    assert lines[2] == (
        "::notice file=pkg/mod.py,line=2,col=1,endLine=2,endColumn=1,title=AI001"
        "::Consider a docstring:%0Ait explains why, 100%25 of the time"
    )
    assert lines[3].startswith("::notice file=pkg/mod.py,line=7,")
    assert render(Report((), files_checked=1), "github", ROOT) == ""


NOTEBOOK_CELL = finding(
    "nb.ipynb", (0, 7), (0, 9), "warning", "F401", "`os` imported but unused", cell=2
)


def test_a_notebook_finding_names_its_cell_as_ruff_does():
    report = Report((NOTEBOOK_CELL,), files_checked=1)
    assert render(report, "text", ROOT).splitlines()[0] == (
        "nb.ipynb:cell 2:1:8: warning F401 `os` imported but unused"
    )
    assert json.loads(render(report, "json", ROOT))["findings"][0]["cell"] == 2
    assert render(report, "github", ROOT).endswith("::cell 2: `os` imported but unused\n")
    log = json.loads(render(report, "sarif", ROOT))
    jsonschema.validate(log, SCHEMA, cls=jsonschema.Draft4Validator)
    assert log["runs"][0]["results"][0]["properties"] == {"cell": 2}
    assert log["runs"][0]["columnKind"] == "unicodeCodePoints"


def test_github_escaping():
    assert escape_data("50% done\r\nnext: a,b") == "50%25 done%0D%0Anext: a,b"
    assert escape_property("dir:x,y%\n") == "dir%3Ax%2Cy%25%0A"
    weird = finding("we,ird:name.py", (0, 0), (0, 1), "error", "X1", "bad")
    assert render(Report((weird,), 1), "github", ROOT).startswith(
        "::error file=we%2Cird%3Aname.py,"
    )


def test_a_published_diagnostic_reads_back_as_the_servers_finding():
    fix = data.FixData(
        "Remove it",
        "safe",
        (data.TextEdit(data.Range(data.Position(4, 0), data.Position(5, 0)), ""),),
    )
    diagnostic = {
        "range": {"start": {"line": 4, "character": 0}, "end": {"line": 4, "character": 9}},
        "message": "`sys` imported but unused",
        "severity": 2,
        "code": "F401",
        "codeDescription": {"href": "https://docs.astral.sh/ruff/rules/unused-import"},
        "source": "gantry",
        "data": unstructure(data.DiagnosticData("abc", fix, RUFF)),
    }
    assert reported("m.py", diagnostic) == finding(
        "m.py",
        (4, 0),
        (4, 9),
        "warning",
        "F401",
        "`sys` imported but unused",
        url="https://docs.astral.sh/ruff/rules/unused-import",
        fingerprint="abc",
        fix=Fix("Remove it", "safe", (Edit((4, 0), (5, 0), ""),)),
    )
    in_cell = {**diagnostic, "data": unstructure(data.DiagnosticData("", None, RUFF, cell=3))}
    assert reported("nb.ipynb", in_cell).cell == 3
    assert reported("nb.ipynb", in_cell).finding.fingerprint == ""


@pytest.mark.parametrize("raw", [None, {"fix": None}, {"fingerprint": 3}, "text"])
def test_a_diagnostic_without_gantrys_data_is_still_reported(raw):
    diagnostic = {
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}}
    }
    item = reported("m.py", {**diagnostic, "message": "m", "source": "other", "data": raw})
    assert (item.finding.level, item.finding.rule) == ("error", "other")
    assert (item.finding.fix, item.finding.fingerprint, item.cell) == (None, "", None)
    assert item.finding.provenance == Provenance("other")
