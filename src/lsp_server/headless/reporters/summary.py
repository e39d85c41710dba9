"""Counts shared by the reporters, and the one-line summary people read."""

from __future__ import annotations

from collections import Counter

from lsp_server.config import LEVELS
from lsp_server.headless.report import Report, Reported


def sorted_findings(report: Report) -> list[Reported]:
    return sorted(report.findings, key=lambda reported: reported.sort_key)


def level_counts(report: Report) -> dict[str, int]:
    counts = Counter(reported.finding.level for reported in report.findings)
    return {level: counts[level] for level in LEVELS}


def fixable_count(report: Report) -> int:
    """Findings with a safe fix: the ones a user can apply without reading them."""
    return sum(
        1
        for reported in report.findings
        if (fix := reported.finding.fix) is not None and fix.applicability == "safe"
    )


def summary_line(report: Report) -> str:
    files = f"{report.files_checked} file{'s' * (report.files_checked != 1)}"
    if not report.findings:
        return f"No findings in {files}."
    counts = level_counts(report)
    total = len(report.findings)
    errors = f"{counts['error']} error{'s' * (counts['error'] != 1)}"
    warnings = f"{counts['warning']} warning{'s' * (counts['warning'] != 1)}"
    # Hints are the mildest information: one bucket keeps the line short.
    info = f"{counts['info'] + counts['hint']} info"
    return (
        f"{total} finding{'s' * (total != 1)} ({errors}, {warnings}, {info}) in {files}; "
        f"{fixable_count(report)} fixable"
    )
