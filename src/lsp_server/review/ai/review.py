"""An AI review of one document as plain data: which units need the model, what the cache
already holds, and a model's answer turned into findings. Pure apart from the store it reads;
the server's AI reviewer runs it off the event loop and talks to the model through the queue.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from lsp_server.review.ai.answer import (
    CATEGORIES,
    Answer,
    BadAnswer,
    Candidate,
    SuggestedFix,
    parse_answer,
)
from lsp_server.review.ai.cache import cache_key
from lsp_server.review.ai.context import ContextPack, build_pack, neighbourhoods
from lsp_server.review.ai.noise import NoisePolicy, filter_findings
from lsp_server.review.ai.prompt import PROMPT_VERSION, build_request
from lsp_server.review.ai.units import LANGUAGES, Unit, split_units
from lsp_server.review.ai.validate import FixValid, ruff_errors, validate_fix
from lsp_server.review.findings import Finding, Fix, Provenance, Snapshot, split_lines

_DEFAULT_POLICY = NoisePolicy()
_NONCE_TRIES = 8
"""Each derived nonce occurs in the data with odds of about 2**-64: more is never needed."""
ENGINE = "ai"
"""The engine's name in provenance; its diagnostics' source is "gantry-ai"."""


@attrs.frozen
class UnitReview:
    """One unit to review: what is sent, and the key its answer is cached under."""

    unit: Unit
    pack: ContextPack
    key: str
    body: dict[str, Any] | None = None
    """The request, built only for a unit the cache does not answer."""


@attrs.frozen
class Plan:
    snapshot: Snapshot
    units: tuple[UnitReview, ...]
    cached: Mapping[str, Any]
    """Cached answers by key (see `Answered`), for the units that have one."""

    @property
    def misses(self) -> tuple[UnitReview, ...]:
        return tuple(review for review in self.units if review.key not in self.cached)


@attrs.frozen
class Answered:
    """A model's answer for one unit, as cached: the content blocks and where they came from."""

    content: list[dict[str, Any]]
    model: str
    endpoint: str | None = None
    tokens: int | None = None
    at: float = 0.0

    def dumps(self) -> str:
        return json.dumps(attrs.asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> Answered:
        return cls(**json.loads(text))


@attrs.frozen
class PastVerdict:
    """A stored verdict on an AI finding of this file, as the prompt summarises it."""

    verdict: str
    category: str
    qualified_name: str
    message: str


def past_verdicts(verdicts: Sequence[Any], path: str) -> tuple[PastVerdict, ...]:
    """The user's verdicts (store records) on AI findings in the file at `path`, oldest first.
    An AI finding's rule is its category; the unit it was in is not recorded."""
    kinds = {"false_positive": "false-positive"}
    return tuple(
        PastVerdict(kinds.get(v.verdict, v.verdict), v.rule, "", v.message)
        for v in sorted(verdicts, key=lambda v: v.created_at)
        if v.path == path and v.rule in CATEGORIES
    )


def offered_fixes(snapshot: Snapshot, findings: Sequence[Finding]) -> dict[str, SuggestedFix]:
    """The fixes offered with `findings`, by fingerprint, as search/replace on `snapshot`'s
    text: what tells later that the user applied one (an "accepted" verdict)."""
    lines = split_lines(snapshot.text)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(position: tuple[int, int]) -> int:
        line, column = position
        return starts[min(line, len(lines))] + column

    out = {}
    for finding in findings:
        if finding.fix is not None and len(finding.fix.edits) == 1:
            edit = finding.fix.edits[0]
            search = snapshot.text[offset(edit.start) : offset(edit.end)]
            out[finding.fingerprint] = SuggestedFix(search, edit.new_text)
    return out


def reviewable(snapshot: Snapshot) -> bool:
    return snapshot.language in LANGUAGES


def plan(
    snapshot: Snapshot,
    store,
    *,
    path: str,
    model: str,
    budget: int,
    local: Sequence[Finding] = (),
    exclude: Sequence[str] = (),
    verdicts: Sequence[PastVerdict] = (),
) -> Plan:
    """Split the document into units, build each one's context pack and request, and look up
    the cache. `path` is the document's path relative to its folder (what the model is told).
    Context from files whose content must stay on this machine (`exclude`, on top of the
    built-in .env*, keys, certificates) is left out of the packs."""
    from remote_exec.inference.exclusion import is_excluded

    units = split_units(snapshot.language, snapshot.text)
    symbols = neighbourhoods(store, units) if store is not None else [()] * len(units)
    excluded = functools.cache(lambda where: is_excluded(where, exclude))  # paths repeat a lot
    reviews = []
    for unit, near in zip(units, symbols, strict=True):
        inside = [f for f in local if unit.start_line <= f.start[0] < unit.end_line]
        near = tuple(symbol for symbol in near if not excluded(symbol.hit.path))
        pack = _pack(unit, path, near, budget, tuple(inside))
        reviews.append(UnitReview(unit, pack, cache_key(unit, pack, PROMPT_VERSION, model)))
    cached = {}
    if store is not None and reviews:
        found = store.ai_cached_many([review.key for review in reviews])
        cached = {key: Answered.loads(entry.answer) for key, entry in found.items()}
    # Requests only for what the cache lacks: building one costs about a millisecond.
    reviews = [
        review
        if review.key in cached
        else attrs.evolve(review, body=_body(review, path, model, verdicts))
        for review in reviews
    ]
    return Plan(snapshot, tuple(reviews), cached)


@functools.lru_cache(maxsize=8192)
def _pack(
    unit: Unit, path: str, near: tuple, budget: int, inside: tuple[Finding, ...]
) -> ContextPack:
    """Packs by what they are made of: while typing, only the units whose text, neighbourhood
    or diagnostics changed are packed again (a file's passes share all the others)."""
    return build_pack(unit, path, near, budget=budget, diagnostics=inside)


def _body(
    review: UnitReview, path: str, model: str, verdicts: Sequence[PastVerdict]
) -> dict[str, Any]:
    # The verdicts shape the prompt, not the key: a new dismissal must not re-review the file
    # (the noise filter keeps dismissed findings out of cached answers anyway).
    body = _request(review.unit, review.pack, path, model, review.key, verdicts)
    # Where the content comes from: the inference client refuses excluded files whatever the
    # caller forgot.
    body["sources"] = sorted({path, *(item.path for item in review.pack.items)})
    return body


def _request(
    unit: Unit,
    pack: ContextPack,
    path: str,
    model: str,
    key: str,
    verdicts: Sequence[PastVerdict] = (),
) -> dict[str, Any]:
    """The request body for a unit, byte for byte the same on every run (cassettes replay by
    it): its blocks' nonce is derived from the cache key rather than drawn. The code cannot aim
    at it, as the key hashes the code itself; build_request still refuses a nonce the data
    holds, and then the next one is derived."""
    for attempt in range(_NONCE_TRIES):
        seed = key if attempt == 0 else f"{key}:{attempt}"
        nonce = hashlib.sha256(seed.encode()).hexdigest()[:16]
        try:
            return build_request(unit, pack, verdicts, path=path, model=model, nonce=nonce).body
        except ValueError:
            continue
    return build_request(unit, pack, verdicts, path=path, model=model).body  # a random one, as ever


def parse(review: UnitReview, answered: Answered) -> Answer | BadAnswer:
    return parse_answer(answered.content, review.unit)


@attrs.frozen
class LocalLines:
    """A local finding as noise control compares it: document lines, both ends inclusive."""

    rule: str
    start_line: int
    end_line: int
    message: str


def local_lines(findings: Sequence[Finding]) -> list[LocalLines]:
    # A whole-line range ends at column 0 of the next line: it ends on the line before.
    return [
        LocalLines(
            f.rule,
            f.start[0],
            f.end[0] - 1 if f.end[1] == 0 and f.end[0] > f.start[0] else f.end[0],
            f.message,
        )
        for f in findings
    ]


def findings(
    snapshot: Snapshot,
    review: UnitReview,
    answer: Answer,
    answered: Answered,
    *,
    cached: bool,
    local: Sequence[Finding] = (),
    dismissed: frozenset[str] = frozenset(),
    policy: NoisePolicy = _DEFAULT_POLICY,
    root: Path | None = None,
) -> tuple[Finding, ...]:
    """The answer's findings worth showing on `snapshot`, each fix validated before it is
    offered (a fix that fails validation is dropped, the finding kept)."""
    unit = review.unit
    kept = filter_findings(answer.findings, unit, local_lines(local), dismissed, policy).kept
    provenance = Provenance(
        engine=ENGINE,
        model=answered.model,
        endpoint=answered.endpoint,
        prompt_version=PROMPT_VERSION,
        cached=cached,
        at=datetime.datetime.fromtimestamp(answered.at, datetime.UTC) if answered.at else None,
        context=review.pack.symbols,
        tokens=answered.tokens,
    )
    errors_before = None
    out = []
    for item in kept:
        candidate = item.candidate
        start, end = candidate.document_range(unit)
        fix = None
        if candidate.fix is not None:
            if errors_before is None and snapshot.language == "python":
                errors_before = ruff_errors(snapshot, root)
            verdict = validate_fix(
                candidate.fix,
                snapshot,
                candidate.document_lines(unit),
                (unit.start_line, unit.end_line - 1),
                root=root,
                errors_before=errors_before,
            )
            if isinstance(verdict, FixValid):
                fix = Fix(
                    f"Apply the suggested fix: {candidate.message}", "unsafe", (verdict.edit,)
                )
        out.append(
            Finding(
                rule=candidate.category,
                message=_message(candidate),
                level=candidate.severity,
                start=start,
                end=end,
                provenance=provenance,
                fix=fix,
                fingerprint=item.fingerprint,
            )
        )
    return tuple(out)


def _message(candidate: Candidate) -> str:
    return (
        f"{candidate.message}\n\n{candidate.rationale}"
        if candidate.rationale
        else candidate.message
    )
