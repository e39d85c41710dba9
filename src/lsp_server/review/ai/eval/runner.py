"""Review each case's changed units through the real engine and record what came of them.

The same steps as the editor on save: ruff's findings on the `after` text, review.plan (units,
context packs from the project's index, the request), one answer per changed unit, review.parse
and review.findings (noise control, fix validation). Nothing is cached: every run asks for
every changed unit, so two runs over one dataset measure the model, not a cache.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Self

import attrs

from lsp_server.analysis.languages import language_for_path
from lsp_server.config import Settings
from lsp_server.review import ruff_engine
from lsp_server.review.ai import review as ai
from lsp_server.review.ai.answer import Answer, BadAnswer
from lsp_server.review.ai.eval.dataset import Case
from lsp_server.review.ai.eval.score import CaseOutcome, Found, UnitOutcome, hits
from lsp_server.review.ai.eval.sources import Reply, Source, Unanswered
from lsp_server.review.ai.noise import NoisePolicy, filter_findings
from lsp_server.review.findings import Finding, Snapshot

Progress = Callable[[str], None]


@attrs.frozen
class _Planned:
    case: Case
    snapshot: Snapshot
    root: Path
    local: tuple[Finding, ...]
    reviews: tuple[ai.UnitReview, ...]
    """The changed units."""


def evaluate(
    cases: Sequence[Case],
    source: Source,
    *,
    model: str,
    settings: Settings | None = None,
    parallel: int = 1,
    progress: Progress | None = None,
) -> list[CaseOutcome]:
    """Each case's outcome, in order. Answers are asked `parallel` at a time; everything
    else runs in this thread."""
    settings = settings or Settings()
    policy = NoisePolicy(
        min_confidence=settings.inference.min_confidence,
        max_per_unit=settings.inference.max_per_unit,
    )
    with (
        tempfile.TemporaryDirectory(prefix="gantry-eval-") as scratch,
        _Stores(Path(scratch), settings) as stores,
    ):
        planned = [_plan(case, Path(scratch), stores, settings, model) for case in cases]
        jobs = [(p.case, review) for p in planned for review in p.reviews]
        if progress:
            progress(
                f"reviewing {len(jobs)} changed units of {len(cases)} cases ({source.describe})"
            )
        with ThreadPoolExecutor(max_workers=max(parallel, 1)) as pool:
            replies = list(pool.map(lambda job: _ask(source, *job), jobs))
        by_case: dict[str, list[Reply | Unanswered]] = {}
        for (case, _), reply in zip(jobs, replies, strict=True):
            by_case.setdefault(case.id, []).append(reply)
        return [_outcome(p, by_case.get(p.case.id, []), policy) for p in planned]


def _ask(source: Source, case: Case, review: ai.UnitReview) -> Reply | Unanswered:
    try:
        return source.answer(case, review)
    except Unanswered as exc:
        return exc


class _Stores:
    """One index per project snapshot, built once for all its cases, in the scratch folder."""

    def __init__(self, scratch: Path, settings: Settings) -> None:
        self._scratch, self._settings = scratch, settings
        self._stores: dict[Path, object] = {}
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def get(self, project: Path | None):
        if project is None:
            return None
        if project not in self._stores:
            from lsp_server.analysis.indexer import Indexer
            from lsp_server.store import Store

            path = self._scratch / f"store-{len(self._stores)}.db"
            store = self._stack.enter_context(Store.open(path))
            Indexer(store, project, self._settings).index_all()
            self._stores[project] = store
        return self._stores[project]


def _plan(case: Case, scratch: Path, stores: _Stores, settings: Settings, model: str) -> _Planned:
    root = case.project or scratch
    file = root / case.path
    language = language_for_path(case.path)
    snapshot = Snapshot(file.as_uri(), str(file), None, case.after, language, settings)
    if not ai.reviewable(snapshot):
        return _Planned(case, snapshot, root, (), ())
    local = tuple(_ruff(snapshot, root)) if language == "python" else ()
    plan = ai.plan(
        snapshot,
        stores.get(case.project),
        path=case.path,
        model=model,
        budget=settings.inference.context_budget,
        local=local,
        exclude=settings.inference.exclude,
    )
    changed = case.change().lines
    reviews = tuple(
        review
        for review in plan.units
        if any(review.unit.unit_line(line) is not None for line in changed)
    )
    return _Planned(case, snapshot, root, local, reviews)


def _ruff(snapshot: Snapshot, root: Path) -> list[Finding]:
    try:
        return ruff_engine.check(snapshot, root)
    except (ruff_engine.RuffUnavailable, ruff_engine.RuffFailed):
        return []  # the AI findings are then not checked against ruff's, as in the editor


def _outcome(
    planned: _Planned, replies: list[Reply | Unanswered], policy: NoisePolicy
) -> CaseOutcome:
    case = planned.case
    units, unanswered = [], []
    for review, reply in zip(planned.reviews, replies, strict=True):
        if isinstance(reply, Unanswered):
            unanswered.append(f"{review.unit.name}: {reply}")
        else:
            units.append(_unit(planned, review, reply, policy))
    if not planned.reviews:
        unanswered.append("no unit of the file is reviewable")
    return CaseOutcome(
        case.id, case.label.kind, case.change().count, tuple(units), tuple(unanswered)
    )


def _unit(
    planned: _Planned, review: ai.UnitReview, reply: Reply, policy: NoisePolicy
) -> UnitOutcome:
    unit = review.unit
    outcome = UnitOutcome(
        unit.name,
        unit.start_line + 1,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
    )
    answer = ai.parse(review, reply.answered)
    if isinstance(answer, BadAnswer):
        return attrs.evolve(outcome, bad_answer=answer.reason)
    shown = ai.findings(
        planned.snapshot,
        review,
        answer,
        reply.answered,
        cached=False,
        local=planned.local,
        policy=policy,
        root=planned.root,
    )
    suggested = _suggested_fixes(answer, review, planned.local, policy)
    found = []
    for finding in shown:
        first, last = _lines(finding)
        found.append(
            Found(
                first,
                last,
                finding.rule,
                finding.message.split("\n\n", 1)[0],
                hits(planned.case.label.line, first, last),
                finding.fingerprint in suggested,
                finding.fix is not None,
            )
        )
    return attrs.evolve(outcome, findings=tuple(found))


def _lines(finding: Finding) -> tuple[int, int]:
    """1-based, inclusive; a range ending at column 0 ends on the line before."""
    (first, _), (last, column) = finding.start, finding.end
    if column == 0 and last > first:
        last -= 1
    return first + 1, last + 1


def _suggested_fixes(
    answer: Answer, review: ai.UnitReview, local: Sequence[Finding], policy: NoisePolicy
) -> frozenset[str]:
    """The fingerprints of the shown findings whose candidate came with a fix: the same noise
    control as review.findings, which keeps a finding and drops a fix that fails validation
    without saying which."""
    lines = ai.local_lines(local)
    kept = filter_findings(answer.findings, review.unit, lines, frozenset(), policy).kept
    return frozenset(k.fingerprint for k in kept if k.candidate.fix is not None)
