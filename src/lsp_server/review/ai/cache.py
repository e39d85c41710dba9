"""The AI review cache's key: a unit is reviewed only when nothing is stored under it.

The key covers everything that decides a review's answer: the unit's text (its digest), the
context the model saw (the pack's digest), the prompt version and the model. The results live in
the workspace store (`Store.ai_cached` / `put_ai_review`), shared by the editor and
`gantry check`, so unchanged code is never sent twice from either.
"""

from __future__ import annotations

import hashlib
import json

from lsp_server.review.ai.context import ContextPack
from lsp_server.review.ai.units import Unit

KEY_FORMAT = 1
"""Bumped when what goes into the key changes, so no key ever means two things."""


def cache_key(unit: Unit, pack: ContextPack, prompt_version: str, model: str) -> str:
    """sha256 of the unit's digest and language, the pack's digest, the prompt version and the
    model. The language counts: the same text is not the same code in JavaScript and in
    TypeScript."""
    # A JSON array keeps the parts apart: ("ab", "c") and ("a", "bc") never collide.
    parts = [KEY_FORMAT, unit.language, unit.digest, pack.digest, prompt_version, model]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()
