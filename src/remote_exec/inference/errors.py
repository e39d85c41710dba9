"""What can go wrong with an endpoint, typed by what the dispatcher should do about it."""

from __future__ import annotations

import datetime
import email.utils
import time
from collections.abc import Mapping

DEFAULT_BACKOFF_S = 15.0
"""Wait after a 429/503/529 that gave no retry-after."""
MAX_RETRY_AFTER_S = 24 * 3600.0
"""A retry-after beyond a day is a server bug, not a plan."""


class InferenceError(Exception):
    """Base class; ``reason`` is short, user-facing and free of secrets."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryLater(InferenceError):
    """Busy or rate-limited (429, 503, 529): the same request may succeed after ``not_before``."""

    def __init__(self, not_before: float, reason: str) -> None:
        super().__init__(reason)
        self.not_before = not_before
        """Epoch seconds, like Job.not_before."""


class Parked(InferenceError):
    """Spend limit or billing: retrying cannot help until a person acts; tell the user."""


class EndpointDown(InferenceError):
    """Unreachable, timed out or failing (5xx): what the circuit breaker counts."""


class BadAnswer(InferenceError):
    """The endpoint answered, but not with a usable Messages response."""


class Rejected(InferenceError):
    """The endpoint refused this request (400, 413, 422): another endpoint or model might not."""


class Excluded(Rejected):
    """The request carries content of a path that never leaves the machine (.env, keys, the user's
    globs). No endpoint may have it, so nothing is sent and the job fails for good."""


class Unusable(InferenceError):
    """Configuration: no key, a key refused, no Messages API there, or the privacy policy."""


def not_before_from(headers: Mapping[str, str], now: float | None = None) -> float:
    """Epoch seconds from retry-after-ms / retry-after (seconds or an HTTP-date), else a backoff."""
    now = time.time() if now is None else now
    delay = _delay_s(headers, now)
    if delay is None:
        delay = DEFAULT_BACKOFF_S
    return now + min(max(delay, 0.0), MAX_RETRY_AFTER_S)


def _delay_s(headers: Mapping[str, str], now: float) -> float | None:
    if ms := headers.get("retry-after-ms"):
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" dates parse naive but mean UTC
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp() - now
