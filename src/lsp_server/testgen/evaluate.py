"""`gantry eval testgen`: test generation run on modules one after another, scored per module:
the funnel's counts, line+branch coverage of the target by the suite, by the suite and the
kept tests, and by the kept tests alone, the time against the budget, the tokens spent."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from .candidates import ENGINES
from .funnel import STAGES, CoverageCount
from .generate import ModelAccess, generate
from .jobs import Budget, RunJob
from .targets import TargetError, resolve

OVER_BUDGET = 0.10
"""A run over its budget by more than this share is flagged."""


@attrs.frozen
class ModuleScore:
    module: str
    stages: tuple[tuple[str, int], ...] = ()
    dropped: tuple[tuple[str, int], ...] = ()
    before: CoverageCount | None = None
    after: CoverageCount | None = None
    kept: CoverageCount | None = None
    """Coverage by the kept tests alone."""
    seconds: float = 0.0
    budget_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    notes: tuple[str, ...] = ()
    error: str | None = None
    """Why the module could not be run at all."""

    @property
    def overrun(self) -> float:
        """How far past its budget it ran, as a share of the budget (0 when within)."""
        return max(0.0, self.seconds / self.budget_s - 1) if self.budget_s else 0.0


def evaluate(
    paths: Sequence[str],
    run: RunJob,
    *,
    budget_s: float,
    engines: Sequence[str] = ENGINES,
    model: ModelAccess | None = None,
    reruns: int = 5,
    progress: Callable[[str], None] = lambda message: None,
) -> list[ModuleScore]:
    scores = []
    for path in paths:
        progress(f"testgen on {path} ({budget_s:g} s)")
        try:
            target = resolve(path)
        except TargetError as exc:
            scores.append(ModuleScore(path, error=str(exc)))
            continue
        start = time.monotonic()
        generated = generate(
            target, run, Budget.of(budget_s), engines=engines, model=model, reruns=reruns
        )
        seconds = time.monotonic() - start
        report = generated.funnel.report
        model_run = generated.model
        scores.append(
            ModuleScore(
                module=path,
                stages=tuple((stage, report.count(stage)) for stage in STAGES),
                dropped=report.dropped,
                before=report.coverage_before,
                after=report.coverage_after,
                kept=report.coverage_kept,
                seconds=seconds,
                budget_s=budget_s,
                input_tokens=model_run.input_tokens if model_run else 0,
                output_tokens=model_run.output_tokens if model_run else 0,
                notes=generated.notes,
            )
        )
    return scores


def _percent(c: CoverageCount | None) -> float | None:
    return None if c is None else round(c.percent, 1)


def summary(scores: Sequence[ModuleScore]) -> dict:
    ran = [s for s in scores if s.error is None]
    kept = [s.kept.percent if s.kept else 0.0 for s in ran]
    after = [s.after.percent if s.after else 0.0 for s in ran]
    return {
        "modules": len(scores),
        "ran": len(ran),
        "median_kept_coverage": round(statistics.median(kept), 1) if kept else None,
        "median_coverage_after": round(statistics.median(after), 1) if after else None,
        "max_overrun": round(max((s.overrun for s in ran), default=0.0), 3),
        "over_budget": [s.module for s in ran if s.overrun > OVER_BUDGET],
        "tokens": sum(s.input_tokens + s.output_tokens for s in ran),
    }


def as_json(scores: Sequence[ModuleScore]) -> dict:
    def count(c: CoverageCount | None) -> dict | None:
        return None if c is None else {**attrs.asdict(c), "percent": _percent(c)}

    return {
        "modules": [
            {
                "module": s.module,
                "error": s.error,
                "stages": dict(s.stages),
                "dropped": dict(s.dropped),
                "coverage_before": count(s.before),
                "coverage_after": count(s.after),
                "coverage_kept": count(s.kept),
                "seconds": round(s.seconds, 1),
                "budget_s": s.budget_s,
                "overrun": round(s.overrun, 3),
                "input_tokens": s.input_tokens,
                "output_tokens": s.output_tokens,
                "notes": list(s.notes),
            }
            for s in scores
        ],
        "summary": summary(scores),
    }


def table(scores: Sequence[ModuleScore], title: str) -> str:
    heads = ["module", *(s.split()[0] for s in STAGES), "suite%", "after%", "kept%"]
    heads += ["seconds", "tokens"]
    rows = []
    for s in scores:
        if s.error is not None:
            rows.append([s.module, f"not run: {s.error}"])
            continue
        counts = dict(s.stages)
        rows.append(
            [
                Path(s.module).as_posix(),
                *(str(counts.get(stage, 0)) for stage in STAGES),
                *(
                    f"{p:.1f}" if (p := _percent(c)) is not None else "-"
                    for c in (s.before, s.after, s.kept)
                ),
                f"{s.seconds:.0f}/{s.budget_s:g}",
                str(s.input_tokens + s.output_tokens),
            ]
        )
    widths = [max(len(r[i]) for r in [heads, *rows] if i < len(r)) for i in range(len(heads))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True))]
    for r in rows:
        lines.append(
            "  ".join(c.ljust(widths[i]) if i < len(widths) else c for i, c in enumerate(r))
        )
    total = summary(scores)
    lines.append(
        f"median line+branch coverage of kept tests: {total['median_kept_coverage']}%; "
        f"with the suite: {total['median_coverage_after']}%; "
        f"largest overrun of the budget: {100 * total['max_overrun']:.1f}%"
        + (f" (over by >10%: {', '.join(total['over_budget'])})" if total["over_budget"] else "")
    )
    return "\n".join(lines) + "\n"
