"""Which AI findings are "the same finding": fingerprints, and the matching rules for verdicts.

An AI finding's fingerprint is a hash of
  - its category (bug, security, ...),
  - the qualified name of the unit it is in (`Class.method`), and
  - the text of its anchored lines (the lines it flags, at most the first 8), each with its
    whitespace collapsed, blank lines left out.
Not of its message, rationale, severity, confidence or line numbers: a model words the same
finding differently from one run to the next, and code moves up and down as the file is edited.
So a dismissed or false-positive finding stays suppressed when it is raised again in other words
or after edits elsewhere, and comes back only when the code it points at, or its unit's name,
changes. Two findings of one category on the same lines of a unit are one finding. A rewording
that also flags other lines is a new finding: the lines are the anchor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping

from lsp_server.review.ai.answer import Candidate, SuggestedFix
from lsp_server.review.ai.shapes import Unit, unit_lines

MAX_ANCHOR_LINES = 8  # as the local fingerprints: a long finding is known by its first lines
SUPPRESSING = frozenset({"dismissed", "false-positive"})
"""Verdicts that keep a finding from being raised again. "accepted" does not: its fix changed
the anchored lines, so the same fingerprint coming back means the problem came back."""


def _normalise(text: str) -> str:
    return " ".join(text.split())


def anchor_text(unit: Unit, start_line: int, end_line: int) -> str:
    """The normalised text of unit lines `start_line`..`end_line` (1-based, inclusive)."""
    lines = unit_lines(unit.text)[start_line - 1 : min(end_line, start_line + MAX_ANCHOR_LINES - 1)]
    return "\n".join(n for line in lines if (n := _normalise(line)))


def fingerprint(candidate: Candidate, unit: Unit) -> str:
    anchored = anchor_text(unit, candidate.start_line, candidate.end_line)
    key = f"ai\0{candidate.category}\0{unit.qualified_name}\0{anchored}"
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def suppressed(fingerprint: str, verdicts: Mapping[str, str] | Collection[str]) -> bool:
    """Whether a verdict keeps this finding from being raised: `verdicts` maps fingerprints
    to their verdict, or is the set of suppressing fingerprints."""
    if isinstance(verdicts, Mapping):
        return verdicts.get(fingerprint) in SUPPRESSING
    return fingerprint in verdicts


def fix_applied(fix: SuggestedFix, text: str) -> bool:
    """Whether `text` (the unit or document now) shows the fix, or an edit equivalent to it,
    applied: the replacement is there and the searched-for code is gone, both compared with
    all whitespace removed (so a reformatted or hand-typed copy of the fix counts). A fix whose
    replacement still contains its search text (an insertion) needs only the replacement."""
    now, search, replace = (_squeeze(t) for t in (text, fix.search, fix.replace))
    if replace and replace not in now:
        return False
    if search in replace:
        return bool(replace)
    return search not in now


def _squeeze(text: str) -> str:
    return "".join(text.split())
