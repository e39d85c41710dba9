"""A model for test generation, from the user's settings: the inference endpoints in order,
through remote_exec's chain (the one exit point: privacy policy, excluded paths, redaction)."""

from __future__ import annotations

from .generate import ModelAccess
from .model_loop import ModelSettings


def from_settings(settings) -> ModelAccess:  # settings: config.Settings, imported lazily
    import math

    import attrs

    from remote_exec.inference import InferenceRequest, InferenceResult, call_chain
    from remote_exec.settings import OutboundPolicy

    inference, testgen = settings.inference, settings.testgen
    exclude = tuple(inference.exclude)
    model_settings = ModelSettings(
        rounds=testgen.model_rounds,
        tokens=testgen.model_tokens,
        context_budget=testgen.context_budget,
        max_tokens=testgen.answer_tokens,
    )
    if not inference.endpoints:
        why = "no model is configured (inference.endpoints in your user settings)"
        return ModelAccess(None, model_settings, exclude, why)
    if testgen.model_rounds == 0:
        return ModelAccess(None, model_settings, exclude, "testgen.model_rounds is 0")
    endpoints = tuple(inference.endpoints)
    policy = OutboundPolicy(inference.privacy, exclude)

    def ask(request: InferenceRequest, seconds: float) -> InferenceResult:
        # The chain may wait on each endpoint in turn: they share the time. Whole seconds:
        # each distinct timeout is a client (and connection pool) of its own.
        limit = max(1, math.ceil(seconds / len(endpoints)))
        bounded = [attrs.evolve(e, read_timeout_s=min(e.read_timeout_s, limit)) for e in endpoints]
        return call_chain(bounded, request, policy)

    return ModelAccess(ask, model_settings, exclude)
