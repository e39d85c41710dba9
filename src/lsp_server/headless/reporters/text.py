"""`path:line:col: level RULE message [*]`, one line per finding, then a summary; a notebook's
findings say their cell (`path:cell 2:line:col: ...`), as ruff does, and the model's say their
source (`level bug [gantry-ai] message`), lest anyone take them for ruff's."""

from __future__ import annotations

from pathlib import Path

from lsp_server.headless.report import LOCAL_SOURCE, Report, Reported, one_based
from lsp_server.headless.reporters.summary import sorted_findings, summary_line


def finding_line(reported: Reported) -> str:
    finding = reported.finding
    fixable = " [*]" if finding.fix and finding.fix.applicability == "safe" else ""
    # A message is one line in a terminal; LSP allows newlines in it.
    message = " ".join(finding.message.splitlines())
    cell = f"cell {reported.cell}:" if reported.cell else ""  # as ruff says it
    source = f" [{reported.source}]" if reported.source != LOCAL_SOURCE else ""
    line, column = one_based(finding.start)
    return (
        f"{reported.path}:{cell}{line}:{column}: {finding.level} {finding.rule}{source} "
        f"{message}{fixable}"
    )


def render(report: Report, root: Path) -> str:
    lines = [finding_line(reported) for reported in sorted_findings(report)]
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"
