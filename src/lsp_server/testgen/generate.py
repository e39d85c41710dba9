"""One test-generation run, start to end, as the CLI and (later) the server drive it: the
local engines' candidates, the funnel, the kept tests placed in the project's layout."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from .candidates import ENGINES, EngineRun, local_candidates
from .funnel import DEFAULT_RERUNS, Funnel, FunnelResult
from .jobs import Budget, RunJob
from .placement import Layout, Placement, detect_layout, place
from .targets import Target

FUNNEL_SHARE_MIN_S = 10.0
"""Seconds kept back from the engines for the funnel, however small the budget."""


@attrs.frozen
class Generated:
    target: Target
    engine_runs: tuple[EngineRun, ...]
    funnel: FunnelResult
    layout: Layout
    placement: Placement | None
    """The test file with the kept tests merged in; None when nothing was kept."""


def generate(
    target: Target,
    run: RunJob,
    budget: Budget,
    *,
    engines: Sequence[str] = ENGINES,
    reruns: int = DEFAULT_RERUNS,
    seed: int = 0,
    ruff: str | None = None,
) -> Generated:
    layout = detect_layout(target)
    share = max(0.0, 1.0 - FUNNEL_SHARE_MIN_S / max(budget.left(), 1.0))
    engine_runs = local_candidates(target, run, budget, engines=engines, share=min(0.45, share))
    candidates = [c for r in engine_runs for c in r.candidates]
    candidate_dir = layout.test_file.parent.relative_to(target.root).as_posix()
    result = Funnel(run, reruns=reruns, seed=seed)(
        target,
        candidates,
        budget,
        candidate_dir=candidate_dir,
        suite=[p.relative_to(target.root).as_posix() for p in layout.suite],
    )
    placement = place(result.kept, layout, target.root, ruff=ruff) if result.kept else None
    return Generated(target, tuple(engine_runs), result, layout, placement)
