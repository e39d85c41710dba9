"""A stable JSON document: {"version": 1, "findings": [...], "summary": {...}}, indented, with
one finding to a line.

Keys are camelCase like LSP's and SARIF's; version 1 only ever gains keys. A finding's
`provenance` is as in `Diagnostic.data` (schemas/diagnostic-data.json). The summary has
`aiIncomplete` ([{path, reason}]) when an AI review did not finish (`gantry check --ai`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lsp_server.contract.converter import unstructure
from lsp_server.headless.report import Report, Reported, one_based
from lsp_server.headless.reporters.summary import fixable_count, level_counts, sorted_findings
from lsp_server.review.findings import Fix, Position

VERSION = 1


def _range(start: Position, end: Position) -> dict[str, int]:
    (line, column), (end_line, end_column) = one_based(start), one_based(end)
    return {"line": line, "column": column, "endLine": end_line, "endColumn": end_column}


def _fix(fix: Fix | None) -> dict[str, Any] | None:
    if fix is None:
        return None
    return {
        "message": fix.message,
        "applicability": fix.applicability,
        "edits": [{**_range(edit.start, edit.end), "newText": edit.new_text} for edit in fix.edits],
    }


def finding_json(reported: Reported, provenance: dict[str, Any]) -> dict[str, Any]:
    finding = reported.finding
    return {
        "path": reported.path,
        "cell": reported.cell,
        **_range(finding.start, finding.end),
        "level": finding.level,
        "rule": finding.rule,
        "message": finding.message,
        "url": finding.url,
        "fingerprint": finding.fingerprint or None,
        "fix": _fix(finding.fix),
        "provenance": provenance,
    }


def render(report: Report, root: Path) -> str:
    counts = level_counts(report)
    # Findings share a few provenances (one per engine version): each is converted once.
    distinct = {reported.finding.provenance for reported in report.findings}
    provenances = {provenance: unstructure(provenance) for provenance in distinct}
    findings = [
        finding_json(reported, provenances[reported.finding.provenance])
        for reported in sorted_findings(report)
    ]
    document = {
        "version": VERSION,
        "findings": _FINDINGS,
        "summary": {
            "findings": len(report.findings),
            "errors": counts["error"],
            "warnings": counts["warning"],
            "info": counts["info"],
            "hints": counts["hint"],
            "fixable": fixable_count(report),
            "files": report.files_checked,
            "complete": report.complete,
            "notAnalysed": list(report.not_analysed),
        },
    }
    if report.ai_incomplete:
        document["summary"]["aiIncomplete"] = [
            {"path": path, "reason": reason} for path, reason in report.ai_incomplete
        ]
    text = json.dumps(document, indent=2, ensure_ascii=False)
    return text.replace(json.dumps(_FINDINGS), _one_per_line(findings), 1) + "\n"


_FINDINGS = "\0findings\0"
"""Where the findings go in the indented document (its JSON form cannot occur elsewhere)."""
_COMPACT = json.JSONEncoder(ensure_ascii=False)


def _one_per_line(findings: list[dict[str, Any]]) -> str:
    """The findings as a JSON array, one finding to a line: json.dumps indents in pure Python
    (a quarter of a second for 20,000 findings), its compact form is C."""
    if not findings:
        return "[]"
    return "[\n    " + ",\n    ".join(map(_COMPACT.encode, findings)) + "\n  ]"
