"""Walk the ordered endpoint chain: first answer wins, failures fall through to the next."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from remote_exec.settings import Endpoint, OutboundPolicy, PrivacyPolicy

from .client import Post, call
from .errors import EndpointDown, InferenceError, Parked, Rejected, RetryLater, Unusable
from .outbound import as_policy, privacy_allows, refuse_excluded
from .records import InferenceRequest, InferenceResult

Outcome = Callable[[str, InferenceError | None], None]


def call_chain(
    endpoints: Sequence[Endpoint],
    request: InferenceRequest,
    policy: OutboundPolicy | PrivacyPolicy,
    skip: Callable[[str], bool] = lambda name: False,
    on_outcome: Outcome | None = None,
    post: Post | None = None,
) -> InferenceResult:
    """The first endpoint's answer that the policy allows and ``skip`` does not exclude.

    ``skip(name)`` is the dispatcher's open circuit breakers; ``on_outcome(name, error or None)``
    reports every attempt, so breakers learn of an endpoint that failed even when a later one
    answered. BadAnswer stops the walk: the model was reached, and its failure is the job's.
    Excluded (the request carries a path that never leaves) is raised before any endpoint: no
    endpoint may have it. Each ``call`` checks the policy again and redacts: the exit point.
    ``post`` is how ``call`` sends (a cassette records or replays; the network by default).
    """
    policy = as_policy(policy)
    refuse_excluded(request, policy)
    failures: list[InferenceError] = []
    for endpoint in endpoints:
        if not privacy_allows(endpoint, policy):
            failures.append(
                Unusable(f"{endpoint.name}: refused by the privacy policy ({policy.privacy})")
            )
            continue
        if skip(endpoint.name):
            failures.append(EndpointDown(f"{endpoint.name}: skipped (circuit open)"))
            continue
        try:
            result = call(endpoint, request, policy, post)
        except (RetryLater, Parked, EndpointDown, Rejected, Unusable) as exc:
            failures.append(exc)
            if on_outcome:
                on_outcome(endpoint.name, exc)
            continue
        except InferenceError as exc:
            if on_outcome:
                on_outcome(endpoint.name, exc)
            raise
        if on_outcome:
            on_outcome(endpoint.name, None)
        return result
    raise most_useful(failures)


def most_useful(failures: Sequence[InferenceError]) -> InferenceError:
    """What the dispatcher should act on when no endpoint answered.

    The earliest retry time if any endpoint is merely busy; else parked if one needs a person;
    else down (the remote may come back); else rejected; else unusable. The reason lists all.
    """
    if not failures:
        return Unusable("no inference endpoints are configured")
    reason = "; ".join(f.reason for f in failures)
    if retry := [f for f in failures if isinstance(f, RetryLater)]:
        return RetryLater(min(f.not_before for f in retry), reason)
    for kind in (Parked, EndpointDown, Rejected):
        if any(isinstance(f, kind) for f in failures):
            return kind(reason)
    return Unusable(reason)
