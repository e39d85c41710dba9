"""One test-generation run, start to end, as the CLI and the server drive it: the local
engines' candidates and their funnel, then the model's rounds (each through the funnel, with
the tests kept before it as part of the suite), and the kept tests placed in the project's
layout."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from .candidates import ENGINES, EngineRun, crosshair, local_candidates
from .funnel import DEFAULT_RERUNS, Funnel, FunnelResult, merged
from .jobs import Budget, RunJob, project_bundle
from .model_loop import Ask, ModelRun, ModelSettings, model_rounds
from .placement import Layout, Placement, detect_layout, place
from .targets import Target

FUNNEL_SHARE_MIN_S = 10.0
"""Seconds kept back from the engines for the funnel, however small the budget."""
MODEL_SHARE = 0.6
"""Of the budget, what the local engines leave to the model's rounds when both run."""
AGAIN_MIN_S = 30.0
"""Without a model, time left after the funnel goes to CrossHair on the symbols it did not
finish, when at least this much is left."""


@attrs.frozen
class ModelAccess:
    """How to reach a model, and what the repository may not change about it."""

    ask: Ask | None
    """None when no model can be asked; ``unavailable`` says why."""
    settings: ModelSettings = attrs.Factory(ModelSettings)
    exclude: tuple[str, ...] = ()
    """Globs of files whose content never leaves (inference.exclude)."""
    unavailable: str | None = None


@attrs.frozen
class Generated:
    target: Target
    engine_runs: tuple[EngineRun, ...]
    funnel: FunnelResult
    layout: Layout
    placement: Placement | None
    """The test file with the kept tests merged in; None when nothing was kept."""
    model: ModelRun | None = None
    notes: tuple[str, ...] = ()
    """What the user should know: engines that did less than they could, model candidates
    skipped and why."""


def generate(
    target: Target,
    run: RunJob,
    budget: Budget,
    *,
    engines: Sequence[str] = ENGINES,
    model: ModelAccess | None = None,
    reruns: int = DEFAULT_RERUNS,
    seed: int = 0,
    ruff: str | None = None,
    isolated: bool = True,
) -> Generated:
    """``engines``: the local engines to run (may be empty); ``model``: the model's rounds
    too, when given."""
    layout = detect_layout(target)
    candidate_dir = layout.test_file.parent.relative_to(target.root).as_posix()
    suite = [p.relative_to(target.root).as_posix() for p in layout.suite]
    funnel = Funnel(run, reruns=reruns, seed=seed, isolated=isolated)
    why_not = target.project_env.note  # a virtual environment the project has, not used
    notes: list[str] = [why_not] if why_not is not None else []
    engine_runs: list[EngineRun] = []
    results: list[FunnelResult] = []
    if engines:
        share = max(0.0, 1.0 - FUNNEL_SHARE_MIN_S / max(budget.left(), 1.0))
        engine_runs = local_candidates(target, run, budget, engines=engines, share=min(0.45, share))
        asking = model is not None and model.ask is not None
        local_budget = Budget.of(budget.left() * (1 - MODEL_SHARE)) if asking else budget
        results.append(
            funnel(
                target,
                [c for r in engine_runs for c in r.candidates],
                local_budget,
                candidate_dir=candidate_dir,
                suite=suite,
            )
        )
        if not asking:
            again = _crosshair_again(
                target, run, budget, funnel, engine_runs, results, candidate_dir, suite
            )
            engine_runs += [r for r, _ in again]
            results += [f for _, f in again if f is not None]
        # Of an engine run more than once, its last pass says how far it got in the end.
        last = {r.engine: r for r in engine_runs}
        notes += [r.problem for r in last.values() if r.problem]
    model_run = None
    if model is not None:
        model_run, model_notes = _model(
            target, model, funnel, budget, results, candidate_dir, suite
        )
        notes += model_notes
        results += model_run.funnels if model_run is not None else ()
    if not results:  # no engine, no model round: an empty funnel
        results.append(funnel(target, [], budget, candidate_dir=candidate_dir))
    result = merged(results, reruns)
    placement = place(result.kept, layout, target.root, ruff=ruff) if result.kept else None
    return Generated(target, tuple(engine_runs), result, layout, placement, model_run, tuple(notes))


def _crosshair_again(
    target: Target,
    run: RunJob,
    budget: Budget,
    funnel: Funnel,
    engine_runs: list[EngineRun],
    results: list[FunnelResult],
    candidate_dir: str,
    suite: list[str],
) -> list[tuple[EngineRun, FunnelResult | None]]:
    """More passes of CrossHair over the symbols it ran out of time on, while the budget
    leaves time for one and its funnel; each funnel runs with the tests kept before."""
    passes: list[tuple[EngineRun, FunnelResult | None]] = []
    last = next((r for r in reversed(engine_runs) if r.engine == "crosshair"), None)
    numbered = sum(len(r.candidates) for r in engine_runs if r.engine == "crosshair")
    kept = [c for r in results for c in r.kept]
    while last is not None and last.unfinished and budget.left() >= AGAIN_MIN_S:
        wanted = set(last.unfinished)
        narrowed = attrs.evolve(
            target, symbols=tuple(s for s in target.symbols if s.name in wanted)
        )
        bundle = project_bundle(target)
        last = crosshair(narrowed, run, budget.left() * 0.5, bundle, first=numbered + 1)
        if not last.candidates:
            passes.append((last, None))
            break
        numbered += len(last.candidates)
        result = funnel(
            target, last.candidates, budget, candidate_dir=candidate_dir, suite=suite, prior=kept
        )
        kept += result.kept
        passes.append((last, result))
    return passes


def _model(
    target: Target,
    model: ModelAccess,
    funnel: Funnel,
    budget: Budget,
    results: list[FunnelResult],
    candidate_dir: str,
    suite: list[str],
) -> tuple[ModelRun | None, list[str]]:
    from remote_exec.inference.exclusion import is_excluded

    from .model_context import build_context

    if model.ask is None:
        return None, [f"model candidates were skipped: {model.unavailable}"]
    if is_excluded(target.relpath, model.exclude):
        why = f"{target.relpath} is excluded from what is sent to models (inference.exclude)"
        return None, [f"model candidates were skipped: {why}"]
    kept_before = [c for r in results for c in r.kept]
    start = results[-1] if results else None
    if start is None or start.report.coverage_after is None:
        # Nothing measured yet (no local engine, or none of its tests was reliable): what the
        # suite and the tests kept so far reach is where the model starts.
        start = funnel(
            target, [], budget, candidate_dir=candidate_dir, suite=suite, prior=kept_before
        )
    layout_suite = [target.root / p for p in suite]
    context = build_context(
        target, layout_suite, budget=model.settings.context_budget, exclude=model.exclude
    )

    def run_funnel(candidates, prior) -> FunnelResult:
        return funnel(
            target, candidates, budget, candidate_dir=candidate_dir, suite=suite, prior=prior
        )

    source = target.path.read_text(encoding="utf-8")
    model_run = model_rounds(
        target,
        source,
        context,
        model.ask,
        run_funnel,
        budget,
        settings=model.settings,
        start=start,
        kept_before=kept_before,
    )
    notes = []
    if model_run.stopped is not None:
        asked = sum(1 for r in model_run.rounds)
        if asked == 0:
            notes.append(f"model candidates were skipped: {model_run.stopped}")
        else:
            notes.append(f"the model's rounds stopped after round {asked}: {model_run.stopped}")
    for r in model_run.rounds:
        if r.problem:
            notes.append(f"model round {r.number}: {r.problem}")
    return model_run, notes
