"""The checks at the one exit point: everything the client sends to an endpoint passes here.

In order: the endpoint's privacy class against the policy, the request's sources against the
excluded paths, then content redaction of every text field. The Redaction is kept by the caller
for that one call, to restore placeholders in the answer.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from remote_exec.settings import Endpoint, OutboundPolicy, PrivacyPolicy

from .errors import Excluded, Unusable
from .exclusion import excluded
from .records import InferenceRequest, InferenceResult, TextBlock, ToolUseBlock
from .redaction import Redaction

log = logging.getLogger("remote_exec.inference")


def as_policy(policy: OutboundPolicy | PrivacyPolicy) -> OutboundPolicy:
    """A bare privacy policy ("any", "self-hosted-only") means no globs beyond the built-in ones."""
    return policy if isinstance(policy, OutboundPolicy) else OutboundPolicy(policy)


def privacy_allows(endpoint: Endpoint, policy: OutboundPolicy | PrivacyPolicy) -> bool:
    return as_policy(policy).privacy == "any" or endpoint.privacy == "self-hosted"


def refuse_excluded(request: InferenceRequest, policy: OutboundPolicy) -> None:
    """Raises Excluded if the request carries content of a path that never leaves."""
    if paths := excluded(request.sources, policy.exclude):
        raise Excluded(
            f"not sent: {', '.join(paths)} must stay on this machine "
            "(environment files, keys and certificates, or inference.exclude)"
        )


def outgoing_body(
    endpoint: Endpoint, request: InferenceRequest, policy: OutboundPolicy
) -> tuple[dict[str, Any], Redaction]:
    """The body that may leave for ``endpoint``, and the redaction that made it; raises Unusable
    (privacy class, or no redaction possible) or Excluded instead of letting anything through."""
    if not privacy_allows(endpoint, policy):
        raise Unusable(f"{endpoint.name}: refused by the privacy policy ({policy.privacy})")
    refuse_excluded(request, policy)
    redaction = Redaction()
    try:
        body = redaction.redact_body(request.api_body())
    except ImportError as exc:  # fail closed: without the detectors nothing leaves
        raise Unusable(f"content redaction is unavailable ({exc}); nothing was sent") from None
    if len(redaction):  # counts and kinds only: a log line must not carry what it hides
        log.info(
            "%s: %d secrets redacted (%s)", endpoint.name, len(redaction), dict(redaction.kinds)
        )
    return body, redaction


def restored(result: InferenceResult, redaction: Redaction) -> InferenceResult:
    """The answer with this call's placeholders back to the originals (text and tool inputs)."""
    if not len(redaction):
        return result
    content = [
        TextBlock(redaction.restore(b.text))
        if isinstance(b, TextBlock)
        else ToolUseBlock(b.id, b.name, redaction.restore(b.input))
        for b in result.content
        if isinstance(b, (TextBlock, ToolUseBlock))
    ]
    return attrs.evolve(result, content=content)
