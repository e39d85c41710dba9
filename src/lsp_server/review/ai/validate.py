"""Fix validation: a model's search/replace fix is offered only if it survives these checks on
the current text, cheapest first:

1. applies: the search text occurs exactly once in the unit's current lines (or the document);
2. target: it changes the flagged lines, beyond whitespace (the cheap check that the finding no
   longer applies: its anchored lines are no longer what the model flagged);
3. parses: tree-sitter finds no error in the result (for any language Gantry parses), and for
   Python `compile()` accepts it;
4. ruff (Python): no F (pyflakes) or E9 (syntax) finding that was not there before.

A fix that breaks code which parsed is refused; on code that did not parse (or compile)
before, the refusal says so, and a fix that makes it parse passes.
Nothing here runs the code: `compile()` only compiles it.
"""

from __future__ import annotations

import bisect
from collections import Counter
from pathlib import Path
from typing import Literal

import attrs
from tree_sitter import Node

from lsp_server.analysis.languages import LANGUAGES, parser
from lsp_server.review import ruff_engine
from lsp_server.review.ai.answer import SuggestedFix
from lsp_server.review.findings import Edit, Finding, Snapshot, split_lines

Check = Literal["applies", "target", "parses", "compiles", "ruff"]
_RUFF_RULES = ["F", "E9"]


@attrs.frozen
class FixValid:
    edit: Edit
    """The fix as an edit of the document (0-based code-point positions)."""
    text: str
    """The document with the fix applied."""
    checks: tuple[Check, ...]
    """The checks it passed (ruff and compile are Python only)."""


@attrs.frozen
class FixRefused:
    check: Check
    reason: str


FixVerdict = FixValid | FixRefused


def validate_fix(
    fix: SuggestedFix,
    snapshot: Snapshot,
    flagged: tuple[int, int],
    unit_span: tuple[int, int] | None = None,
    *,
    root: Path | None = None,
    errors_before: Counter[tuple[str, str]] | None = None,
) -> FixVerdict:
    """Whether `fix` may be offered on `snapshot` (the document now) for a finding on document
    lines `flagged` (0-based, inclusive), searching only the unit's lines `unit_span` when given.
    `errors_before` is `ruff_errors(snapshot)` when the caller already has it (several fixes in
    one document); ruff runs from `root` (the project root; the file's folder by default)."""
    lines = snapshot.lines
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    if unit_span is None:
        region_start, region_end, where = 0, len(snapshot.text), "the document"
    else:
        first, last = unit_span
        region_start, region_end = starts[min(first, len(lines))], starts[min(last + 1, len(lines))]
        where = f"the unit (lines {first + 1}-{last + 1})"
    positions = _occurrences(snapshot.text, fix.search, region_start, region_end)
    if len(positions) != 1:
        return FixRefused(
            "applies", f"the search text occurs {len(positions)} times in {where}, not once"
        )
    start = positions[0]
    end = start + len(fix.search)
    text = snapshot.text[:start] + fix.replace + snapshot.text[end:]
    edit = Edit(_position(starts, lines, start), _position(starts, lines, end), fix.replace)
    checks: list[Check] = ["applies"]

    refused = _target(snapshot.text, text, edit, flagged, fix)
    if refused is not None:
        return refused
    checks.append("target")

    # The text before the fix is checked only when the fixed one fails, to say whose fault it
    # is: most fixes pass, and each check of the before text costs as much as of the after.
    language = snapshot.language
    if language in LANGUAGES:
        if (line := _first_error(language, text)) is not None:
            if (before := _first_error(language, snapshot.text)) is not None:
                return FixRefused(
                    "parses", f"the document does not parse before the fix (line {before})"
                )
            return FixRefused("parses", f"the fixed text does not parse (tree-sitter, line {line})")
        checks.append("parses")
    if language != "python":
        return FixValid(edit, text, tuple(checks))

    if (error := _compile_error(text, snapshot.path)) is not None:
        if (before := _compile_error(snapshot.text, snapshot.path)) is not None:
            return FixRefused("compiles", f"the document does not compile before the fix: {before}")
        return FixRefused("compiles", f"the fixed text does not compile: {error}")
    checks.append("compiles")

    try:
        found = _ruff_findings(attrs.evolve(snapshot, text=text), root)
        after = Counter((f.rule, f.message) for f in found)
        if after and errors_before is None:
            errors_before = ruff_errors(snapshot, root)
    except (ruff_engine.RuffUnavailable, ruff_engine.RuffFailed) as exc:
        return FixRefused("ruff", f"ruff could not check the fix: {exc}")
    before = errors_before or Counter()
    if any(_syntax(rule) for rule, _ in before):
        # Ruff reports no pyflakes findings on code it cannot parse, so a fix that repairs it
        # brings the whole file's back: only those on the lines the fix wrote count as its own.
        written = range(edit.start[0], edit.start[0] + fix.replace.count("\n") + 1)
        after = Counter((f.rule, f.message) for f in found if f.start[0] in written)
    new = after - before
    if new:
        shown = "; ".join(f"{rule} {message}" for rule, message in sorted(new))
        return FixRefused("ruff", f"the fix brings new ruff findings: {shown}")
    checks.append("ruff")
    return FixValid(edit, text, tuple(checks))


def _compile_error(text: str, path: str) -> str | None:
    try:
        compile(text, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:  # ValueError: a NUL byte in the source
        return str(exc)
    return None


def ruff_errors(snapshot: Snapshot, root: Path | None = None) -> Counter[tuple[str, str]]:
    """Ruff's F and E9 findings on a Python snapshot, as (rule, message) counts: positions
    move when a fix adds or removes lines, what is reported does not."""
    return Counter((f.rule, f.message) for f in _ruff_findings(snapshot, root))


def _ruff_findings(snapshot: Snapshot, root: Path | None) -> list[Finding]:
    settings = snapshot.settings
    ruff = attrs.evolve(settings.ruff, select=_RUFF_RULES, extend_select=[])
    return ruff_engine.check(
        attrs.evolve(snapshot, settings=attrs.evolve(settings, ruff=ruff)), root
    )


def _syntax(rule: str) -> bool:
    return rule in (ruff_engine.SYNTAX_ERROR, "syntax-error") or rule.startswith("E9")


def _occurrences(text: str, search: str, start: int, end: int) -> list[int]:
    """Where `search` starts in text[start:end], overlapping occurrences included: "aa" in
    "aaa" is ambiguous too."""
    found, at = [], text.find(search, start, end)
    while at != -1:
        found.append(at)
        at = text.find(search, at + 1, end)
    return found


def _position(starts: list[int], lines: list[str], offset: int) -> tuple[int, int]:
    line = bisect.bisect_right(starts, offset) - 1
    if line >= len(lines):
        return (len(lines), 0)
    return (line, offset - starts[line])


def _target(
    old: str, new: str, edit: Edit, flagged: tuple[int, int], fix: SuggestedFix
) -> FixRefused | None:
    """The fix changes the flagged lines: its edit overlaps them, and their text (with the
    lines the edit spans, whitespace collapsed) differs after it."""
    first, last = flagged
    edit_first = edit.start[0]
    # the last line the search text covers (not the next one when it ends in a line break)
    edit_last = edit.start[0] + fix.search.rstrip("\r\n").count("\n")
    if edit_last < first or edit_first > last:
        return FixRefused(
            "target",
            f"the fix (lines {edit_first + 1}-{edit_last + 1}) does not touch the flagged lines "
            f"({first + 1}-{last + 1})",
        )
    old_lines, new_lines = split_lines(old), split_lines(new)
    top, bottom = min(first, edit_first), max(last, edit_last)
    delta = len(new_lines) - len(old_lines)
    before = " ".join("".join(old_lines[top : bottom + 1]).split())
    after = " ".join("".join(new_lines[top : bottom + 1 + delta]).split())
    if before == after:
        return FixRefused("target", "the fix changes only whitespace on the flagged lines")
    return None


def _first_error(language: str, text: str) -> int | None:
    """The 1-based line of the first syntax error tree-sitter finds, or None."""
    root = parser(language).parse(text.encode("utf-8", "surrogatepass")).root_node
    if not root.has_error:
        return None
    node: Node = root
    while True:
        if node.is_error or node.is_missing:
            return node.start_point[0] + 1
        child = next((c for c in node.children if c.has_error or c.is_missing), None)
        if child is None:
            return node.start_point[0] + 1
        node = child
