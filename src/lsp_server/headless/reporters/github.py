"""GitHub Actions workflow commands: each finding becomes an annotation on the pull request.

https://docs.github.com/actions/reference/workflow-commands-for-github-actions
"""

from __future__ import annotations

from pathlib import Path

from lsp_server.headless.report import LOCAL_SOURCE, Report, Reported, one_based
from lsp_server.headless.reporters.summary import sorted_findings

_COMMANDS = {"error": "error", "warning": "warning", "info": "notice", "hint": "notice"}


def escape_data(value: str) -> str:
    """Escape a command's message: % first, or the escapes themselves would be re-escaped."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """Escape a property value, where `:` and `,` would end it early."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def annotation(reported: Reported) -> str:
    finding = reported.finding
    (line, column), (end_line, end_column) = one_based(finding.start), one_based(finding.end)
    source = f" ({reported.source})" if reported.source != LOCAL_SOURCE else ""
    properties = {
        "file": reported.path,
        "line": line,
        "col": column,
        "endLine": end_line,
        "endColumn": end_column,
        "title": finding.rule + source,
    }
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items())
    cell = f"cell {reported.cell}: " if reported.cell else ""  # lines count from the cell's start
    return f"::{_COMMANDS[finding.level]} {props}::{escape_data(cell + finding.message)}"


def render(report: Report, root: Path) -> str:
    return "".join(annotation(reported) + "\n" for reported in sorted_findings(report))
