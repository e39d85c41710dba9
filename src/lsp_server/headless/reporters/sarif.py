"""SARIF 2.1.0, the format code-scanning services (GitHub, GitLab, Azure DevOps) ingest.

Artifact URIs are relative to %SRCROOT%, so a report is the same on every checkout; columns are
Unicode code points, as ruff counts them and `gantry check` negotiates with the server. A model's
finding carries its source and provenance (model, endpoint, prompt version, cached, when, the
context symbols, tokens: as in the JSON report) in its result's properties; ruff's provenance is
the tool's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lsp_server import __version__
from lsp_server.contract.converter import unstructure
from lsp_server.headless.report import Report, Reported, one_based
from lsp_server.headless.reporters.summary import sorted_findings
from lsp_server.review.findings import Fix, Position

SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
# The project has no published home yet; this is where its docs will live.
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "gantry/v1"
_LEVELS = {"error": "error", "warning": "warning", "info": "note", "hint": "note"}


def _artifact(path: str) -> dict[str, str]:
    return {"uri": quote(path), "uriBaseId": SRCROOT}


def _region(start: Position, end: Position) -> dict[str, int]:
    (line, column), (end_line, end_column) = one_based(start), one_based(end)
    return {"startLine": line, "startColumn": column, "endLine": end_line, "endColumn": end_column}


def _fix(path: str, fix: Fix) -> dict[str, Any]:
    replacements = [
        {
            "deletedRegion": _region(edit.start, edit.end),
            "insertedContent": {"text": edit.new_text},
        }
        for edit in fix.edits
    ]
    return {
        "description": {"text": fix.message or "Apply the suggested fix"},
        "artifactChanges": [{"artifactLocation": _artifact(path), "replacements": replacements}],
    }


def _rule(rule: str, url: str | None) -> dict[str, Any]:
    descriptor: dict[str, Any] = {"id": rule, "shortDescription": {"text": rule}}
    if url:
        descriptor["helpUri"] = url
    return descriptor


def _result(reported: Reported, rule_index: int) -> dict[str, Any]:
    finding = reported.finding
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": _LEVELS[finding.level],
        "message": {"text": finding.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": _artifact(reported.path),
                    "region": _region(finding.start, finding.end),
                }
            }
        ],
    }
    properties: dict[str, Any] = {}
    if reported.cell:  # a notebook's lines count from the start of this cell
        properties["cell"] = reported.cell
    if finding.provenance.engine != "ruff":
        properties["source"] = reported.source
        properties["provenance"] = unstructure(finding.provenance)
    if properties:
        result["properties"] = properties
    if finding.fingerprint:
        result["partialFingerprints"] = {FINGERPRINT_KEY: finding.fingerprint}
    if finding.fix and finding.fix.edits:
        result["fixes"] = [_fix(reported.path, finding.fix)]
    return result


def sarif_log(report: Report, root: Path) -> dict[str, Any]:
    findings = sorted_findings(report)
    # One descriptor per rule, in id order, carrying the first docs URL seen for it.
    urls: dict[str, str | None] = {}
    for reported in findings:
        if not urls.get(reported.finding.rule):
            urls[reported.finding.rule] = reported.finding.url
    rule_ids = sorted(urls)
    rule_index = {rule: index for index, rule in enumerate(rule_ids)}
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "gantry",
                "version": __version__,
                "rules": [_rule(rule, urls[rule]) for rule in rule_ids],
            }
        },
        "originalUriBaseIds": {SRCROOT: {"uri": root.resolve().as_uri().rstrip("/") + "/"}},
        "columnKind": "unicodeCodePoints",
        "results": [_result(reported, rule_index[reported.finding.rule]) for reported in findings],
        "invocations": [{"executionSuccessful": report.complete}],
    }
    notifications = [
        (path, "Analysis did not finish for this file") for path in report.not_analysed
    ]
    notifications += [
        (path, f"The AI review of this file is incomplete: {reason}")
        for path, reason in report.ai_incomplete
    ]
    if notifications:
        run["invocations"][0]["toolExecutionNotifications"] = [
            {
                "level": "error",
                "message": {"text": text},
                "locations": [{"physicalLocation": {"artifactLocation": _artifact(path)}}],
            }
            for path, text in notifications
        ]
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def render(report: Report, root: Path) -> str:
    return json.dumps(sarif_log(report, root), indent=2, ensure_ascii=False) + "\n"
