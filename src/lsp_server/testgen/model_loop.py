"""Candidate tests from a model, CoverUp-style: ask for tests aimed at the lines and branches
nothing reaches yet, run the answer through the funnel, and ask again with what went wrong
(collection errors, failing assertions, tests that reached nothing new) and what is still
missing, for a few rounds within a token budget and the wall clock.

The model is reached through ``ask`` (remote_exec's inference chain: the privacy policy,
excluded paths and redaction apply there); the funnel through ``run_funnel``. A model that
cannot be reached stops the loop with the reason, and what was kept before stays kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from remote_exec.inference import BadAnswer, InferenceError, InferenceRequest, InferenceResult
from remote_exec.inference import estimate_tokens as request_tokens

from .candidates import Candidate
from .funnel import Fate, FunnelResult
from .jobs import Budget
from .model_context import TestContext
from .model_prompt import TOOL_NAME, BadTests, Feedback, build_request, parse_answer
from .targets import Target

Ask = Callable[[InferenceRequest, float], InferenceResult]
"""(request, seconds the answer may take) -> the answer; raises InferenceError."""
RunFunnel = Callable[[Sequence[Candidate], Sequence[Candidate]], FunnelResult]
"""(candidates, tests kept before) -> the funnel's result for the candidates."""

MIN_ROUND_S = 15.0
"""A round needs the model's answer and a funnel (collect, reruns, coverage): below this much
time left it is not started."""
ENGINE = "model"


@attrs.frozen
class ModelSettings:
    """Already bounded by the settings (config.TestgenSettings)."""

    rounds: int = 3
    tokens: int = 60_000
    """Input plus output tokens of all rounds together."""
    context_budget: int = 4000
    max_tokens: int = 4096
    """The most an answer may spend."""


@attrs.frozen
class ModelRound:
    number: int
    input_tokens: int = 0
    output_tokens: int = 0
    candidates: int = 0
    kept: int = 0
    problem: str | None = None
    """Why the round's answer gave nothing to run (it did not fit the schema), if so."""
    rejected: tuple[str, ...] = ()
    """Test blocks of the answer turned away, and why."""


@attrs.frozen
class ModelRun:
    rounds: tuple[ModelRound, ...]
    funnels: tuple[FunnelResult, ...]
    stopped: str | None
    """Why it stopped before its last round, or never asked (the model unreachable, out of
    tokens or time, nothing left to reach); None when it ran every round."""

    @property
    def input_tokens(self) -> int:
        return sum(r.input_tokens for r in self.rounds)

    @property
    def output_tokens(self) -> int:
        return sum(r.output_tokens for r in self.rounds)


def feedback_of(result: FunnelResult, kept: Sequence[Candidate]) -> Feedback:
    failures = []
    for o in result.outcomes:
        name = o.candidate.name
        if o.fate == Fate.KEPT:
            continue
        if o.fate == Fate.NOT_COLLECTED:
            failures.append(f"- {name}: could not be imported or collected: {o.detail}")
        elif o.fate == Fate.FAILING:
            bug = next((b for b in result.possible_bugs if b.candidate is o.candidate), None)
            said = bug.assertion if bug is not None else o.detail
            failures.append(f"- {name}: its assertion fails against the current code:\n{said}")
        elif o.fate == Fate.ERROR:
            failures.append(f"- {name}: raised an error: {o.detail}")
        elif o.fate == Fate.FLAKY:
            failures.append(f"- {name}: flaky ({o.detail}); tests must be deterministic")
        elif o.fate == Fate.REDUNDANT:
            failures.append(f"- {name}: passed, but reaches no line or branch not reached before")
        elif o.fate == Fate.DUPLICATE:
            failures.append(f"- {name}: the same test as one written before")
        else:
            failures.append(f"- {name}: {o.fate.value}: {o.detail}")
    return Feedback(tuple(failures), tuple(c.name for c in kept))


def model_rounds(
    target: Target,
    source: str,
    context: TestContext,
    ask: Ask,
    run_funnel: RunFunnel,
    budget: Budget,
    *,
    settings: ModelSettings,
    start: FunnelResult | None,
    kept_before: Sequence[Candidate] = (),
) -> ModelRun:
    """Up to ``settings.rounds`` rounds; ``start`` is what the suite (and the tests kept
    before) reach, from an earlier funnel, or None when nothing measured it."""
    measured = start is not None and start.report.coverage_after is not None
    missing = start.missing_lines if start is not None else ()
    branches = start.missing_branches if start is not None else ()
    if measured and not missing and not branches:
        return ModelRun((), (), "every line and branch is reached already: the model was not asked")
    kept = list(kept_before)
    feedback: Feedback | None = None
    rounds: list[ModelRound] = []
    funnels: list[FunnelResult] = []
    spent = 0
    next_id = 1
    for number in range(1, settings.rounds + 1):
        if budget.left() < MIN_ROUND_S:
            return ModelRun(tuple(rounds), tuple(funnels), _out_of_time(number, budget))
        request = build_request(
            target,
            source,
            context,
            missing_lines=missing,
            missing_branches=branches,
            measured=measured,
            feedback=feedback,
            round_number=number,
            max_tokens=settings.max_tokens,
        )
        expected = request_tokens(request) + settings.max_tokens
        if spent + expected > settings.tokens:
            why = (
                f"round {number} was not sent: it could spend {expected} tokens and "
                f"{settings.tokens - spent} of the budget of {settings.tokens} are left"
            )
            return ModelRun(tuple(rounds), tuple(funnels), why)
        try:
            # The answer may take what is left but the round's funnel: a slow model must not
            # carry the run past its budget.
            result = ask(request, max(budget.left() - MIN_ROUND_S * 0.6, 1.0))
        except BadAnswer as exc:  # reached, but no submit_tests call: a schema problem
            rounds.append(ModelRound(number, problem=f"the answer did not fit: {exc.reason}"))
            feedback = Feedback(kept=tuple(c.name for c in kept), problem=exc.reason)
            continue
        except InferenceError as exc:
            return ModelRun(tuple(rounds), tuple(funnels), f"the model: {exc.reason}")
        used_in, used_out = result.usage.input_tokens, result.usage.output_tokens
        spent += used_in + used_out
        try:
            parsed = parse_answer(result.tool_input(TOOL_NAME), first=next_id)
        except BadTests as exc:
            rounds.append(
                ModelRound(number, used_in, used_out, problem=f"the answer did not fit: {exc}")
            )
            feedback = Feedback(kept=tuple(c.name for c in kept), problem=str(exc))
            continue
        next_id += len(parsed.candidates)
        funnel = run_funnel(parsed.candidates, kept)
        funnels.append(funnel)
        kept += funnel.kept
        rounds.append(
            ModelRound(
                number,
                used_in,
                used_out,
                len(parsed.candidates),
                len(funnel.kept),
                rejected=parsed.rejected,
            )
        )
        feedback = feedback_of(funnel, kept)
        if parsed.rejected:
            feedback = attrs.evolve(
                feedback, failures=feedback.failures + tuple(f"- {r}" for r in parsed.rejected)
            )
        if funnel.report.coverage_after is not None:
            measured = True
            missing, branches = funnel.missing_lines, funnel.missing_branches
            if not missing and not branches:
                return ModelRun(tuple(rounds), tuple(funnels), "every line and branch is reached")
    return ModelRun(tuple(rounds), tuple(funnels), None)


def _out_of_time(number: int, budget: Budget) -> str:
    return f"round {number} was not started: {budget.left():.0f} s of the budget were left"
