"""The markdown table every remote_exec bench prints: rows are dicts with section, tool,
metric, value, and optionally target, met (True/False/None) and note."""

from __future__ import annotations


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(rows: list[dict]) -> str:
    lines = [
        "| section | tool | metric | value | target | met? | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = "" if row.get("met") is None else ("met" if row["met"] else "missed")
        cells = (
            row["section"],
            row["tool"],
            row["metric"],
            row["value"],
            row.get("target", ""),
            met,
            row.get("note", ""),
        )
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)
