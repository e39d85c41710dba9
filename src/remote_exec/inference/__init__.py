"""Anthropic Messages-API inference over an ordered chain of endpoints (remote_exec.settings).

Self-hosted servers (vLLM, llama.cpp, Ollama, LiteLLM) and Anthropic's cloud all speak
/v1/messages. Importing this package does not import the anthropic SDK (about a second), nor
detect-secrets: ``call`` and ``count_tokens`` do, on first use. They are the one exit point: the
privacy policy, the excluded paths and content redaction are applied there (outbound.py).
"""

from .chain import call_chain
from .client import call, count_tokens, estimate_tokens
from .errors import (
    DEFAULT_BACKOFF_S,
    BadAnswer,
    EndpointDown,
    Excluded,
    InferenceError,
    Parked,
    Rejected,
    RetryLater,
    Unusable,
    not_before_from,
)
from .exclusion import DEFAULT_EXCLUDE, excluded, is_excluded
from .outbound import privacy_allows
from .records import InferenceRequest, InferenceResult, TextBlock, ToolUseBlock, Usage
from .redaction import Redaction, find_secrets

__all__ = [
    "DEFAULT_BACKOFF_S",
    "DEFAULT_EXCLUDE",
    "BadAnswer",
    "EndpointDown",
    "Excluded",
    "InferenceError",
    "InferenceRequest",
    "InferenceResult",
    "Parked",
    "Redaction",
    "Rejected",
    "RetryLater",
    "TextBlock",
    "ToolUseBlock",
    "Unusable",
    "Usage",
    "call",
    "call_chain",
    "count_tokens",
    "estimate_tokens",
    "excluded",
    "find_secrets",
    "is_excluded",
    "not_before_from",
    "privacy_allows",
]
