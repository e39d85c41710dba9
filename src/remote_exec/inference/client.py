"""One call to one endpoint through the anthropic SDK, its failures translated to our errors.

The SDK is imported inside the functions: it costs about a second, and importing this package
must stay cheap for the language server's start-up.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from remote_exec.credentials import SecretMissing, read_secret
from remote_exec.settings import Endpoint, OutboundPolicy, PrivacyPolicy

from .errors import (
    BadAnswer,
    EndpointDown,
    InferenceError,
    Parked,
    Rejected,
    RetryLater,
    Unusable,
    not_before_from,
)
from .outbound import as_policy, outgoing_body, restored
from .records import (
    ContentBlock,
    InferenceRequest,
    InferenceResult,
    TextBlock,
    ToolUseBlock,
    Usage,
)

if TYPE_CHECKING:
    import anthropic

NO_KEY = "no-key"
"""Sent to self-hosted endpoints without a key: any explicit key stops the SDK from picking up
ANTHROPIC_API_KEY or a credentials profile and handing a cloud secret to the GPU box."""

SELF_HOSTED_ONLY = OutboundPolicy()
"""The default policy: self-hosted endpoints only, the built-in excluded paths only."""

_PARKING_CODES = frozenset(
    {
        "enforced_spend_limit_reached",
        "contract_spend_limit_reached",
        "linked_organization_spend_limit_reached",
        "linked_organization_billing_unavailable",
    }
)
# Older and plain-400 forms carry only a message ("Your credit balance is too low…", "You have
# reached your specified API usage limits…"): matched on these phrases, 4xx only.
_PARKING_PHRASES = ("credit balance", "spend limit", "api usage limit")
_NOT_OFFERED = (404, 405, 501)

_no_counting: set[tuple[str, str]] = set()
_no_counting_lock = threading.Lock()


def resolve_api_key(endpoint: Endpoint) -> str | None:
    """The endpoint's key from its environment variable or file; raises Unusable if missing."""
    try:
        key = read_secret(endpoint.api_key_env, endpoint.api_key_file, endpoint.name)
    except SecretMissing as exc:
        raise Unusable(str(exc)) from None
    if key is not None:
        return key
    if endpoint.api_key_env:
        raise Unusable(f"{endpoint.name}: environment variable {endpoint.api_key_env} is not set")
    if endpoint.privacy == "cloud":
        raise Unusable(f"{endpoint.name}: a cloud endpoint needs api_key_env or api_key_file")
    return None


@attrs.frozen
class Posted:
    """An endpoint's HTTP answer to a Messages request, as it came (placeholders and all)."""

    text: str
    request_id: str | None = None
    at: float | None = None
    """When it was answered, if not just now (a replayed answer)."""


Post = Callable[[Endpoint, dict[str, Any]], Posted]
"""Sends a wire body (`wire_body`, after the exit point's checks and redaction) to an
endpoint: `post_messages`, or a cassette that records or replays it (cassette.py)."""


def call(
    endpoint: Endpoint,
    request: InferenceRequest,
    policy: OutboundPolicy | PrivacyPolicy = SELF_HOSTED_ONLY,
    post: Post | None = None,
) -> InferenceResult:
    """Send ``request`` to ``endpoint`` once (no retries: they are the queue's business).

    The one exit point: the policy is checked and the body redacted here (outbound.py), and the
    answer comes back with the placeholders restored. ``post`` only ever sees the redacted body,
    and its answer is read here like any other."""
    body, redaction = outgoing_body(endpoint, request, as_policy(policy))
    started = time.monotonic()
    posted = (post or post_messages)(endpoint, wire_body(endpoint, body))
    latency = time.monotonic() - started
    result = _parse(endpoint, request, posted.text, posted.request_id, latency)
    answered_at = posted.at if posted.at is not None else time.time()
    return restored(attrs.evolve(result, answered_at=answered_at), redaction)


def wire_body(endpoint: Endpoint, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as it goes over the wire: with the endpoint's model, and its max_tokens unless
    the request set one."""
    max_tokens = body.get("max_tokens", endpoint.max_tokens)
    return {"model": endpoint.model, **body, "max_tokens": max_tokens}


def post_messages(endpoint: Endpoint, sent: dict[str, Any]) -> Posted:
    """POST a wire body to the endpoint's /v1/messages."""
    import anthropic

    client = _client(endpoint, resolve_api_key(endpoint))
    body = dict(sent)
    model = body.pop("model")
    extra = {"temperature": body.pop("temperature")} if "temperature" in body else None
    try:
        raw = client.messages.with_raw_response.create(model=model, extra_body=extra, **body)
        return Posted(raw.text(), raw.request_id)
    except anthropic.APIError as exc:
        raise _translate(endpoint, exc) from exc


def count_tokens(
    endpoint: Endpoint,
    request: InferenceRequest,
    policy: OutboundPolicy | PrivacyPolicy = SELF_HOSTED_ONLY,
) -> tuple[int, bool]:
    """(input tokens, exact): the endpoint's count where it offers one (the request passes the
    same checks and redaction as ``call``), else an estimate."""
    key = (endpoint.name, endpoint.base_url)
    with _no_counting_lock:
        offered = key not in _no_counting
    if offered:
        try:
            return _count_exactly(endpoint, request, as_policy(policy)), True
        except _CountingNotOffered:
            with _no_counting_lock:
                _no_counting.add(key)
        except InferenceError:
            pass  # down or busy now: an estimate serves a budget, and we ask again next time
    return estimate_tokens(request), False


def estimate_tokens(request: InferenceRequest) -> int:
    """About four characters a token over the JSON of what the model reads."""
    text = json.dumps([request.system, request.messages, request.tools], ensure_ascii=False)
    return math.ceil(len(text) / 4)


class _CountingNotOffered(Exception):
    pass


def _count_exactly(endpoint: Endpoint, request: InferenceRequest, policy: OutboundPolicy) -> int:
    import anthropic

    body, _ = outgoing_body(endpoint, request, policy)
    client = _client(endpoint, resolve_api_key(endpoint))
    for unused in ("max_tokens", "temperature", "metadata"):
        body.pop(unused, None)
    try:
        counted = client.messages.count_tokens(model=endpoint.model, **body)
    except anthropic.APIStatusError as exc:
        if exc.status_code in _NOT_OFFERED:
            raise _CountingNotOffered from exc
        raise _translate(endpoint, exc) from exc
    except anthropic.APIError as exc:
        raise _translate(endpoint, exc) from exc
    tokens = getattr(counted, "input_tokens", None)
    if not isinstance(tokens, int):
        raise BadAnswer(f"{endpoint.name}: token count without input_tokens")
    return tokens


@functools.lru_cache(maxsize=32)
def _client(endpoint: Endpoint, api_key: str | None) -> anthropic.Anthropic:
    """One client (and connection pool) per endpoint and key; a rotated key makes a new one."""
    import anthropic
    import httpx2

    sdk_log = logging.getLogger("anthropic")
    if sdk_log.level == logging.NOTSET:  # its DEBUG lines carry whole request bodies: source code
        sdk_log.setLevel(logging.WARNING)
    timeout = httpx2.Timeout(
        endpoint.read_timeout_s,  # write and pool; never the SDK's 600 s default
        connect=endpoint.connect_timeout_s,
        read=endpoint.read_timeout_s,
    )
    return anthropic.Anthropic(
        base_url=endpoint.base_url,
        api_key=api_key or NO_KEY,
        timeout=timeout,
        max_retries=0,  # the SDK would retry spend-limit 429s; the queue retries instead
    )


def _translate(endpoint: Endpoint, exc: anthropic.APIError) -> InferenceError:
    import anthropic

    name = endpoint.name
    if isinstance(exc, anthropic.APITimeoutError):
        return EndpointDown(f"{name}: {_timeout_kind(exc, endpoint)}")
    if isinstance(exc, anthropic.APIConnectionError):
        return EndpointDown(f"{name}: cannot connect to {endpoint.base_url} ({_cause(exc)})")
    if not isinstance(exc, anthropic.APIStatusError):  # e.g. a response that failed validation
        return BadAnswer(f"{name}: {exc.message}")

    status, said = exc.status_code, exc.api_message or _short(exc.body)
    if (parked := _parking_reason(exc)) is not None:
        return Parked(f"{name}: {parked}")
    if status in (429, 503, 529, 408, 409):
        return RetryLater(not_before_from(exc.response.headers), f"{name}: busy ({status}: {said})")
    if status in (401, 403):
        return Unusable(f"{name}: the key was refused ({status}: {said})")
    if status == 404:
        return Unusable(f"{name}: no Messages API or no model {endpoint.model!r} there ({said})")
    if status >= 500:
        return EndpointDown(f"{name}: server error {status} ({said})")
    return Rejected(f"{name}: request refused ({status}: {said})")


def _parking_reason(exc: anthropic.APIStatusError) -> str | None:
    said = exc.api_message or ""
    coded = (
        exc.error_code in _PARKING_CODES or exc.type == "billing_error" or exc.status_code == 402
    )
    # A known code that is not a parking one (ramp_limit_exceeded) wins over the wording.
    worded = (
        exc.error_code is None
        and 400 <= exc.status_code < 500
        and any(phrase in said.lower() for phrase in _PARKING_PHRASES)
    )
    if not (coded or worded):
        return None
    detail = said or "spend limit or billing problem"
    return (
        f"{detail} — AI requests are paused and kept in the queue; "
        "retry them once the limit or billing is sorted out"
    )


def _timeout_kind(exc: Exception, endpoint: Endpoint) -> str:
    import httpx2

    if isinstance(exc.__cause__, httpx2.ConnectTimeout):
        return f"no connection within {endpoint.connect_timeout_s:g} s"
    return f"no answer within {endpoint.read_timeout_s:g} s"


def _cause(exc: Exception) -> str:
    cause = exc.__cause__
    return f"{type(cause).__name__}: {cause}" if cause else "connection error"


def _short(body: object, limit: int = 200) -> str:
    text = body if isinstance(body, str) else json.dumps(body)
    return text if len(text) <= limit else text[:limit] + "…"


def _parse(
    endpoint: Endpoint, request: InferenceRequest, text: str, request_id: str | None, latency: float
) -> InferenceResult:
    name = endpoint.name
    try:
        data = json.loads(text)
    except ValueError:
        raise BadAnswer(f"{name}: the answer is not JSON: {_short(text, 80)}") from None
    if not (
        isinstance(data, dict)
        and data.get("type") == "message"
        and isinstance(data.get("content"), list)
    ):
        raise BadAnswer(f"{name}: the answer is not a Messages response: {_short(text, 80)}")
    content = [_block(name, b) for b in data["content"] if _known(b)]
    stop_reason = data.get("stop_reason")
    forced = request.forced_tool
    if forced is not None and not any(
        isinstance(b, ToolUseBlock) and forced in ("", b.name) for b in content
    ):
        wanted = f"tool {forced!r}" if forced else "a tool"
        raise BadAnswer(f"{name}: the answer does not call {wanted} (stop_reason {stop_reason})")
    usage = data.get("usage") or {}
    return InferenceResult(
        endpoint=name,
        model=str(data.get("model") or endpoint.model),
        content=content,
        stop_reason=stop_reason,
        usage=Usage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)),
        latency_s=latency,
        request_id=request_id or data.get("id"),
    )


def _known(block: Any) -> bool:
    # Other kinds (thinking, server tools) carry nothing the callers use.
    return isinstance(block, dict) and block.get("type") in ("text", "tool_use")


def _block(name: str, block: dict[str, Any]) -> ContentBlock:
    if block["type"] == "text":
        return TextBlock(str(block.get("text", "")))
    tool_input = block.get("input")
    if isinstance(tool_input, str):  # some proxies pass the arguments through as a JSON string
        try:
            tool_input = json.loads(tool_input)
        except ValueError:
            pass
    if not isinstance(tool_input, dict):
        raise BadAnswer(f"{name}: tool_use input is not a JSON object: {_short(tool_input, 80)}")
    return ToolUseBlock(str(block.get("id", "")), str(block.get("name", "")), tool_input)
