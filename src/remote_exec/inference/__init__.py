"""Anthropic Messages-API inference over an ordered chain of endpoints (remote_exec.settings).

Self-hosted servers (vLLM, llama.cpp, Ollama, LiteLLM) and Anthropic's cloud all speak
/v1/messages. Importing this package does not import the anthropic SDK (about a second):
``call`` and ``count_tokens`` do, on first use.
"""

from .chain import call_chain, privacy_allows
from .client import call, count_tokens, estimate_tokens
from .errors import (
    DEFAULT_BACKOFF_S,
    BadAnswer,
    EndpointDown,
    InferenceError,
    Parked,
    Rejected,
    RetryLater,
    Unusable,
    not_before_from,
)
from .records import InferenceRequest, InferenceResult, TextBlock, ToolUseBlock, Usage

__all__ = [
    "DEFAULT_BACKOFF_S",
    "BadAnswer",
    "EndpointDown",
    "InferenceError",
    "InferenceRequest",
    "InferenceResult",
    "Parked",
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
    "not_before_from",
    "privacy_allows",
]
