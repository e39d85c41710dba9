"""Where the eval's answers come from: a live endpoint, or an answers file recorded earlier
(or written by hand).

A live answer goes through `remote_exec.inference.call_chain`, so the policy, the excluded paths
and redaction apply at the same exit point as in the editor. A cassette (record/replay of wire
bodies) fits in as a `Live` whose chain is given the cassette's `post`, once call_chain takes
one; nothing else here would change.

An answers file is JSON lines, one unit's answer a line:

    {"case": ID, "unit": QUALIFIED_NAME, "line": FIRST_LINE, "content": [BLOCKS],
     "usage": {"input_tokens": N, "output_tokens": N}, "model": NAME}

`line` (1-based, in the case's `after`) tells apart units of one name; without it the line
matches any unit of that name. Instead of `content` a line may give `findings`, the
report_findings input's list, which stands for one call of the tool. `usage` and `model` are
optional.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import attrs

from lsp_server.review.ai.answer import TOOL_NAME
from lsp_server.review.ai.eval.dataset import Case
from lsp_server.review.ai.review import Answered, UnitReview


class Unanswered(Exception):
    """No answer for a unit (the endpoint failed, or the file holds none); its case is not
    scored."""


@attrs.frozen
class Reply:
    answered: Answered
    input_tokens: int = 0
    output_tokens: int = 0


class Source(Protocol):
    def answer(self, case: Case, review: UnitReview) -> Reply:
        """The answer for one unit of `case`; raises Unanswered. Called from worker threads."""
        ...

    @property
    def describe(self) -> str: ...


@attrs.frozen
class Live:
    endpoint: Any
    """remote_exec.settings.Endpoint"""
    policy: Any
    """remote_exec.settings.OutboundPolicy"""

    @property
    def describe(self) -> str:
        return f"model {self.endpoint.model} at {self.endpoint.base_url}"

    def answer(self, case: Case, review: UnitReview) -> Reply:
        from remote_exec.inference import InferenceError, InferenceRequest, call_chain

        try:
            result = call_chain(
                [self.endpoint], InferenceRequest.from_body(review.body), self.policy
            )
        except InferenceError as exc:
            raise Unanswered(exc.reason) from None
        usage = result.usage
        answered = Answered(
            content=result.to_dict()["content"],
            model=result.model,
            endpoint=result.endpoint,
            tokens=usage.input_tokens + usage.output_tokens,
            at=time.time(),
        )
        return Reply(answered, usage.input_tokens, usage.output_tokens)


@attrs.frozen
class AnswersFile:
    path: Path
    answers: dict[tuple[str, str, int | None], dict[str, Any]]

    @property
    def describe(self) -> str:
        return f"answers from {self.path}"

    @classmethod
    def load(cls, path: Path) -> AnswersFile:
        """ValueError (with the file and line) for a file that cannot be read."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: cannot read the answers ({exc})") from None
        answers = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                key = (str(entry["case"]), str(entry["unit"]), entry.get("line"))
                if key[2] is not None and not isinstance(key[2], int):
                    raise ValueError("line must be an integer")
                if ("content" in entry) == ("findings" in entry):
                    raise ValueError("give either content or findings")
            except (ValueError, TypeError, KeyError) as exc:
                reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                raise ValueError(f"{path}:{number}: {reason}") from None
            answers[key] = entry
        return cls(path, answers)

    def answer(self, case: Case, review: UnitReview) -> Reply:
        unit = review.unit
        entry = self.answers.get((case.id, unit.name, unit.start_line + 1)) or self.answers.get(
            (case.id, unit.name, None)
        )
        if entry is None:
            raise Unanswered(
                f"{self.path} has no answer for {unit.name} (line {unit.start_line + 1})"
            )
        content = entry.get("content")
        if content is None:
            tool_input = {"findings": entry["findings"]}
            content = [
                {"type": "tool_use", "id": "toolu_file", "name": TOOL_NAME, "input": tool_input}
            ]
        usage = entry.get("usage") or {}
        tokens_in, tokens_out = (
            int(usage.get("input_tokens", 0)),
            int(usage.get("output_tokens", 0)),
        )
        answered = Answered(
            content=content,
            model=str(entry.get("model", "answers-file")),
            endpoint=None,
            tokens=tokens_in + tokens_out or None,
        )
        return Reply(answered, tokens_in, tokens_out)


@attrs.define
class Recorder:
    """Writes each answer `source` gives as an answers-file line, so a live run can be
    scored again offline (`--answers`)."""

    source: Source
    path: Path
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)

    @property
    def describe(self) -> str:
        return self.source.describe

    def answer(self, case: Case, review: UnitReview) -> Reply:
        reply = self.source.answer(case, review)
        entry = {
            "case": case.id,
            "unit": review.unit.name,
            "line": review.unit.start_line + 1,
            "content": reply.answered.content,
            "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
            "model": reply.answered.model,
        }
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return reply
