"""The `report_findings` tool: its input schema, and the strict parse of a model's answer.

An answer is the `content` of a Messages-API response (a list of block dicts). It is used only
if it is exactly one `report_findings` call whose input fits the schema, every range lies inside
the unit and every fix's search text occurs exactly once in the unit; otherwise the whole answer
is a `BadAnswer` with the reason, never partly used. Text blocks beside the call are ignored:
nothing the model writes outside the tool input (nor anything the reviewed code made it write)
changes what is accepted.

Lines in an answer are 1-based and relative to the unit, as the prompt numbers them; columns are
1-based, the end column inclusive.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs
import cattrs

from lsp_server.review.ai.shapes import Unit, unit_lines

if TYPE_CHECKING:
    import jsonschema

TOOL_NAME = "report_findings"
SEVERITIES = ("error", "warning", "info", "hint")
CATEGORIES = ("bug", "security", "performance", "maintainability", "test-gap")
MAX_FINDINGS = 20  # an answer longer than this is a model going astray, not a review
MAX_BAD_ANSWERS = 3

Severity = Literal["error", "warning", "info", "hint"]
Category = Literal["bug", "security", "performance", "maintainability", "test-gap"]

_LINE = {"type": "integer", "minimum": 1}
FINDINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "findings": {
            "type": "array",
            "maxItems": MAX_FINDINGS,
            "description": "The problems found; an empty list when the code is fine.",
            "items": {
                "type": "object",
                "properties": {
                    "start_line": {**_LINE, "description": "First line, as numbered in the unit."},
                    "end_line": {**_LINE, "description": "Last line (inclusive)."},
                    "start_column": {**_LINE, "description": "Optional, 1-based."},
                    "end_column": {**_LINE, "description": "Optional, 1-based, inclusive."},
                    # "type" beside "enum" for the constrained decoders of self-hosted servers
                    "severity": {"type": "string", "enum": list(SEVERITIES)},
                    "category": {"type": "string", "enum": list(CATEGORIES)},
                    "message": {"type": "string", "minLength": 1, "maxLength": 500},
                    "rationale": {"type": "string", "minLength": 1, "maxLength": 3000},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    "fix": {
                        "type": "object",
                        "description": "An exact search/replace inside the unit. The search "
                        "text must occur exactly once in the unit, copied verbatim (no line "
                        "numbers).",
                        "properties": {
                            "search": {"type": "string", "minLength": 1},
                            "replace": {"type": "string"},
                        },
                        "required": ["search", "replace"],
                        "additionalProperties": False,
                    },
                },
                "required": [
                    "start_line",
                    "end_line",
                    "severity",
                    "category",
                    "message",
                    "rationale",
                    "confidence",
                ],
                "additionalProperties": False,
            },
        }
    },
    "required": ["findings"],
    "additionalProperties": False,
}
TOOL: dict[str, Any] = {
    "name": TOOL_NAME,
    "description": "Report the problems found in the unit under review (an empty list if none).",
    "input_schema": FINDINGS_SCHEMA,
}


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    """Built at the first answer read (in a worker thread): importing jsonschema takes ~30 ms,
    which every server start, `gantry check` included, would pay otherwise."""
    import jsonschema

    return jsonschema.Draft202012Validator(FINDINGS_SCHEMA)


@attrs.frozen
class SuggestedFix:
    search: str
    replace: str


@attrs.frozen
class Candidate:
    """A finding as the model reported it, lines relative to the unit (1-based)."""

    start_line: int
    end_line: int
    severity: Severity
    category: Category
    message: str
    rationale: str
    confidence: float
    start_column: int | None = None
    end_column: int | None = None
    fix: SuggestedFix | None = None

    def document_lines(self, unit: Unit) -> tuple[int, int]:
        """The flagged lines as 0-based document lines (inclusive)."""
        return (unit.document_line(self.start_line - 1), unit.document_line(self.end_line - 1))

    def document_range(self, unit: Unit) -> tuple[tuple[int, int], tuple[int, int]]:
        """0-based (line, column) start and exclusive end in the document; a range without
        columns covers its lines whole."""
        lines = unit_lines(unit.text)
        first, last = self.document_lines(unit)
        start_column = self.start_column - 1 if self.start_column is not None else 0
        if self.end_column is not None:
            end_column = self.end_column
        else:
            end_column = len(lines[self.end_line - 1]) if self.end_line <= len(lines) else 0
        return ((first, start_column), (last, end_column))


@attrs.frozen
class Answer:
    findings: tuple[Candidate, ...]


@attrs.frozen
class BadAnswer:
    """An answer rejected as a whole; `reason` is shown to the user if the job fails for it."""

    reason: str


_converter = cattrs.Converter(forbid_extra_keys=True)


def parse_answer(
    content: Sequence[Mapping[str, Any]], unit: Unit, stop_reason: str | None = None
) -> Answer | BadAnswer:
    """The model's answer about `unit` as typed candidates, or why it cannot be used."""
    if stop_reason == "max_tokens":
        return BadAnswer("the answer was cut off at the output token limit")
    if not isinstance(content, Sequence) or isinstance(content, (str, bytes)):
        return BadAnswer("the answer's content is not a list of blocks")
    calls = [b for b in content if isinstance(b, Mapping) and b.get("type") == "tool_use"]
    if not calls:
        texts = any(isinstance(b, Mapping) and b.get("type") == "text" for b in content)
        return BadAnswer(f"the answer has no {TOOL_NAME} tool call{' (text only)' * texts}")
    others = sorted({str(c.get("name")) for c in calls if c.get("name") != TOOL_NAME})
    if others:
        return BadAnswer(f"the answer calls unknown tools: {', '.join(others)}")
    if len(calls) > 1:
        return BadAnswer(f"the answer calls {TOOL_NAME} {len(calls)} times; once is expected")
    tool_input = calls[0].get("input")
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(tool_input))
    if error is not None:
        return BadAnswer(f"the tool input does not fit the schema: {_describe(error)}")
    try:
        findings = tuple(_converter.structure(item, Candidate) for item in tool_input["findings"])
    except Exception as exc:  # the schema admits nothing cattrs refuses; kept as a guard
        return BadAnswer(f"the tool input could not be read: {exc}")
    for index, finding in enumerate(findings):
        reason = _out_of_unit(finding, unit)
        if reason is not None:
            return BadAnswer(f"findings[{index}]: {reason}")
    return Answer(findings)


def _describe(error: jsonschema.ValidationError) -> str:
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    if error.validator == "maxItems":  # its message would repeat the whole list
        message = f"{len(error.instance)} items, more than the {error.validator_value} allowed"
    else:
        message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
    return f"{where.lstrip('.') or 'input'}: {message}"


def _out_of_unit(finding: Candidate, unit: Unit) -> str | None:
    lines = unit_lines(unit.text)
    if finding.end_line < finding.start_line:
        return f"end_line {finding.end_line} is before start_line {finding.start_line}"
    if finding.end_line > len(lines):
        return (
            f"lines {finding.start_line}-{finding.end_line} are outside the unit (1-{len(lines)})"
        )
    for name, line in (("start", finding.start_line), ("end", finding.end_line)):
        column = getattr(finding, f"{name}_column")
        width = max(len(lines[line - 1]), 1)
        if column is not None and column > width:
            return f"{name}_column {column} is past the end of line {line} ({width} columns)"
    if (
        finding.start_line == finding.end_line
        and finding.start_column is not None
        and finding.end_column is not None
        and finding.end_column < finding.start_column
    ):
        return f"end_column {finding.end_column} is before start_column {finding.start_column}"
    if finding.fix is not None:
        if finding.fix.search == finding.fix.replace:
            return "the fix replaces its search text with itself"
        count = unit.text.count(finding.fix.search)
        if count != 1:
            shown = _excerpt(finding.fix.search)
            return f"the fix's search text {shown} occurs {count} times in the unit, not once"
    return None


def _excerpt(text: str, limit: int = 60) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")


@attrs.frozen
class BadAnswers:
    """Bad answers so far for one review job. Each is counted; at `limit` the job fails for
    good with the last reason (a model that keeps answering off-schema will not recover by
    being asked forever)."""

    count: int = 0
    last_reason: str = ""
    limit: int = attrs.field(default=MAX_BAD_ANSWERS, validator=attrs.validators.gt(0))

    def add(self, bad: BadAnswer) -> BadAnswers:
        return attrs.evolve(self, count=self.count + 1, last_reason=bad.reason)

    @property
    def failed(self) -> bool:
        return self.count >= self.limit

    @property
    def failure(self) -> str:
        """What the user is shown when the job has failed."""
        return f"the model gave {self.count} unusable answers; the last: {self.last_reason}"
