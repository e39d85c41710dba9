"""A stable JSON document: {"version": 1, "findings": [...], "summary": {...}}.

Keys are camelCase like LSP's and SARIF's; version 1 only ever gains keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lsp_server.headless.findings import Finding, Fix, Report, Span
from lsp_server.headless.reporters.summary import fixable_count, level_counts, sorted_findings

VERSION = 1


def _range(span: Span) -> dict[str, int]:
    return {
        "line": span.line,
        "column": span.column,
        "endLine": span.end_line,
        "endColumn": span.end_column,
    }


def _fix(fix: Fix | None) -> dict[str, Any] | None:
    if fix is None:
        return None
    return {
        "message": fix.message,
        "applicability": fix.applicability,
        "edits": [{**_range(edit.span), "newText": edit.new_text} for edit in fix.edits],
    }


def finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "path": finding.path,
        "cell": finding.cell,
        **_range(finding.span),
        "level": finding.level,
        "rule": finding.rule,
        "message": finding.message,
        "url": finding.url,
        "fingerprint": finding.fingerprint,
        "fix": _fix(finding.fix),
    }


def render(report: Report, root: Path) -> str:
    counts = level_counts(report)
    document = {
        "version": VERSION,
        "findings": [finding_json(finding) for finding in sorted_findings(report)],
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
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
