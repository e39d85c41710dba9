"""Reporters: pure functions from a Report to the text of one output format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lsp_server.headless.report import Report
from lsp_server.headless.reporters import github, json_report, sarif, text

Reporter = Callable[[Report, Path], str]

REPORTERS: dict[str, Reporter] = {
    "text": text.render,
    "json": json_report.render,
    "sarif": sarif.render,
    "github": github.render,
}


def render(report: Report, fmt: str, root: Path) -> str:
    """The report in `fmt`; `root` is the workspace the findings' paths are relative to."""
    return REPORTERS[fmt](report, root)
