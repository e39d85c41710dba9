"""`gantry testgen`'s output: the kept tests, the possible bugs and the funnel table as text,
or all of it as one JSON object."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import attrs

from .funnel import CoverageCount, FunnelReport
from .generate import Generated
from .placement import merge


def _where(path: Path, cwd: Path) -> str:
    return os.path.relpath(path, cwd)


def funnel_table(report: FunnelReport) -> str:
    columns = [*report.engines, "total"]
    width = max(len(s) for s, _ in report.stages) + 2
    col = max(8, *(len(c) + 2 for c in columns))
    lines = ["stage".ljust(width) + "".join(c.rjust(col) for c in columns)]
    for stage, counts in report.stages:
        cells = [*counts, sum(counts)]
        lines.append(stage.ljust(width) + "".join(str(n).rjust(col) for n in cells))
    dropped = ", ".join(f"{n} {fate}" for fate, n in report.dropped) or "none"
    lines.append(f"dropped: {dropped}")
    return "\n".join(lines)


def _coverage(c: CoverageCount) -> str:
    return (
        f"{c.percent:.1f}% (lines {c.lines}/{c.lines_total}, "
        f"branches {c.branches}/{c.branches_total})"
    )


def ran_where(ran: Mapping[str, int]) -> str:
    """Where the run's jobs ran, in words: "3 on gateway gpu-box, 2 in the local sandbox"."""
    parts = [
        f"{n} in the local sandbox" if where == "local" else f"{n} on gateway {where}"
        for where, n in sorted(ran.items())
    ]
    return ", ".join(parts) or "none"


def as_text(
    generated: Generated,
    notes: list[str],
    written: Path | None,
    cwd: Path,
    ran: Mapping[str, int] | None = None,
) -> str:
    """``ran``: how many jobs ran where ("local", or a gateway's name), when they went
    through the queue."""
    funnel = generated.funnel
    report = funnel.report
    out = [f"note: {note}" for note in notes]
    where = _where(generated.layout.test_file, cwd)
    if funnel.kept:
        if written is not None:
            out.append(f"# {len(funnel.kept)} kept test(s) written to {where}")
        else:
            out.append(f"# {len(funnel.kept)} kept test(s), for {where} (--write merges them)")
        out.append(merge("", funnel.kept)[0])
    else:
        out.append("# no test was kept")
    if funnel.possible_bugs:
        out.append("# possible bugs: these tests fail against the current code")
        for bug in funnel.possible_bugs:
            out.append(f"{bug.candidate.name} ({bug.candidate.engine}):")
            out.append("  assertion: " + bug.assertion.replace("\n", "\n  "))
            if bug.input:
                out.append("  input: " + bug.input.replace("\n", "\n  "))
        out.append("")
    out.append(
        f"# funnel: {report.reruns} reruns in random order, inside the existing suite "
        f"({report.seconds:.1f} s)"
    )
    out.append(funnel_table(report))
    if report.coverage_before is not None and report.coverage_after is not None:
        out.append(
            f"coverage of {generated.target.relpath}: {_coverage(report.coverage_before)}"
            f" -> {_coverage(report.coverage_after)}"
        )
    if generated.model is not None and generated.model.rounds:
        model = generated.model
        out.append(
            f"model: {len(model.rounds)} round(s), {model.input_tokens} tokens sent, "
            f"{model.output_tokens} answered"
        )
    if ran is not None:
        out.append(f"jobs through the queue: {ran_where(ran)}")
    return "\n".join(out)


def model_json(generated: Generated) -> dict | None:
    model = generated.model
    if model is None:
        return None
    return {
        "rounds": [attrs.asdict(r) for r in model.rounds],
        "input_tokens": model.input_tokens,
        "output_tokens": model.output_tokens,
        "stopped": model.stopped,
    }


def as_json(
    generated: Generated,
    notes: list[str],
    written: Path | None,
    cwd: Path,
    ran: Mapping[str, int] | None = None,
) -> str:
    """As ``as_text``; ``ran`` becomes "jobs_ran" (absent when the jobs ran here directly)."""
    funnel = generated.funnel
    report = funnel.report

    def count(c: CoverageCount | None) -> dict | None:
        return None if c is None else {**attrs.asdict(c), "percent": round(c.percent, 2)}

    return json.dumps(
        {
            "target": generated.target.relpath,
            "symbols": [s.name for s in generated.target.symbols],
            "notes": notes,
            "test_file": _where(generated.layout.test_file, cwd),
            "written": written is not None,
            "kept_tests": merge("", funnel.kept)[0] if funnel.kept else "",
            "funnel": {
                "reruns": report.reruns,
                "engines": list(report.engines),
                "stages": {stage: dict(zip(report.engines, n)) for stage, n in report.stages},
                "dropped": dict(report.dropped),
                "coverage_before": count(report.coverage_before),
                "coverage_after": count(report.coverage_after),
                "coverage_kept": count(report.coverage_kept),
                "seconds": round(report.seconds, 2),
            },
            "model": model_json(generated),
            "candidates": [
                {
                    "id": o.candidate.id,
                    "engine": o.candidate.engine,
                    "name": o.candidate.name,
                    "fate": o.fate.value,
                    "passes": o.passes,
                    "runs": o.runs,
                    "detail": o.detail,
                }
                for o in funnel.outcomes
            ],
            "possible_bugs": [
                {
                    "test": b.candidate.name,
                    "engine": b.candidate.engine,
                    "assertion": b.assertion,
                    "input": b.input,
                    "source": b.candidate.module_text(),
                }
                for b in funnel.possible_bugs
            ],
            **({} if ran is None else {"jobs_ran": dict(sorted(ran.items()))}),
        },
        indent=2,
    )
