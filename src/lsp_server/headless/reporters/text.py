"""`path:line:col: level RULE message [*]`, one line per finding, then a summary; a notebook's
findings say their cell (`path:cell 2:line:col: ...`), as ruff does."""

from __future__ import annotations

from pathlib import Path

from lsp_server.headless.findings import Finding, Report
from lsp_server.headless.reporters.summary import sorted_findings, summary_line


def finding_line(finding: Finding) -> str:
    fixable = " [*]" if finding.fix and finding.fix.is_safe else ""
    # A message is one line in a terminal; LSP allows newlines in it.
    message = " ".join(finding.message.splitlines())
    cell = f"cell {finding.cell}:" if finding.cell else ""  # as ruff says it
    return (
        f"{finding.path}:{cell}{finding.span.line}:{finding.span.column}: "
        f"{finding.level} {finding.rule} {message}{fixable}"
    )


def render(report: Report, root: Path) -> str:
    lines = [finding_line(finding) for finding in sorted_findings(report)]
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"
