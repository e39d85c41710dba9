"""Counts shared by the reporters, and the one-line summary people read."""

from __future__ import annotations

from collections import Counter

from lsp_server.headless.findings import LEVELS, Finding, Report


def sorted_findings(report: Report) -> list[Finding]:
    return sorted(report.findings, key=lambda finding: finding.sort_key)


def level_counts(report: Report) -> dict[str, int]:
    counts = Counter(finding.level for finding in report.findings)
    return {level: counts[level] for level in LEVELS}


def fixable_count(report: Report) -> int:
    """Findings with a safe fix: the ones a user can apply without reading them."""
    return sum(1 for finding in report.findings if finding.fix and finding.fix.is_safe)


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
