"""Noise control and the AI fingerprint: repeats of ruff, confidence, the cap, verdicts."""

from __future__ import annotations

import attrs
import pytest
from ai_shapes import Unit

from lsp_server.review.ai.answer import Candidate, SuggestedFix
from lsp_server.review.ai.fingerprint import anchor_text, fingerprint, fix_applied, suppressed
from lsp_server.review.ai.noise import NoisePolicy, filter_findings, rule_category


@attrs.frozen
class Local:
    rule: str
    start_line: int
    end_line: int
    message: str


TEXT = (
    "def load(path, cache={}):\n"  # 1
    "    import json\n"  # 2
    "    unused = 1\n"  # 3
    "    data = open(path).read()\n"  # 4
    "    for key in json.loads(data):\n"  # 5
    "        cache[key] = eval(key)\n"  # 6
    "    return cache\n"  # 7
)
UNIT = Unit("python", "function", "Store.load", 100, 106, TEXT)


def candidate(line: int, **changes) -> Candidate:
    base = Candidate(line, line, "warning", "bug", "A problem", "Because", 0.9)
    return attrs.evolve(base, **changes)


def test_a_repeat_of_a_local_finding_on_the_same_lines_is_dropped():
    local = [
        Local("F841", 102, 102, "Local variable `unused` is assigned to but never used"),
        Local("E501", 105, 105, "Line too long (120 > 100)"),
        Local(
            "S307", 105, 105, "Use of possibly insecure function; consider using `ast.literal_eval`"
        ),
    ]
    unused = candidate(3, category="maintainability", message="`unused` is never read")
    by_rule = candidate(3, message="F841: dead store")
    by_words = candidate(6, category="security", message="eval() is insecure; use ast.literal_eval")
    different = candidate(6, message="Mutating the shared default `cache` leaks state across calls")
    other_line = candidate(4, category="maintainability", message="`unused` is never read")
    result = filter_findings([unused, by_rule, by_words, different, other_line], UNIT, local)
    assert [k.candidate for k in result.kept] == [different, other_line]
    assert {d.candidate: d.reason for d in result.dropped} == {
        unused: "repeats F841 on the same lines",
        by_rule: "repeats F841 on the same lines",
        by_words: "repeats S307 on the same lines",
    }


def test_rule_categories_by_longest_prefix():
    assert rule_category("F401") == "maintainability"
    assert rule_category("F821") == "bug"
    assert rule_category("S608") == "security"
    assert rule_category("PERF401") == "performance"
    assert rule_category("E501") is None and rule_category("W291") is None


def test_minimum_confidence_and_cap_keep_the_most_confident():
    candidates = [
        candidate(i, confidence=c) for i, c in enumerate((0.3, 0.6, 0.95, 0.6, 0.8, 0.7, 0.9), 1)
    ]
    result = filter_findings(candidates, UNIT)
    kept = [k.candidate for k in result.kept]
    assert [c.confidence for c in kept] == [0.95, 0.9, 0.8, 0.7, 0.6]
    assert kept[-1] is candidates[1]  # of equals, the model's order
    reasons = sorted(d.reason for d in result.dropped)
    assert reasons == ["confidence 0.3 < 0.5", "over the cap of 5 per unit"]
    strict = filter_findings(
        candidates, UNIT, policy=NoisePolicy(min_confidence=0.85, max_per_unit=1)
    )
    assert [k.candidate.confidence for k in strict.kept] == [0.95]
    assert filter_findings(candidates, UNIT, policy=NoisePolicy(max_per_unit=0)).kept == ()
    with pytest.raises(ValueError):
        NoisePolicy(min_confidence=1.5)


def test_the_fingerprint_ignores_wording_and_position():
    first = candidate(6, message="eval on untrusted keys", rationale="RCE", confidence=0.7)
    reworded = candidate(
        6,
        message="Arbitrary code execution via eval()",
        rationale="x",
        severity="error",
        confidence=0.99,
    )
    assert fingerprint(first, UNIT) == fingerprint(reworded, UNIT)
    moved = attrs.evolve(UNIT, start_line=300, end_line=306)
    reindented = attrs.evolve(
        UNIT, text=TEXT.replace("cache[key] = eval(key)", "cache[key]  =  eval(key)")
    )
    assert fingerprint(first, moved) == fingerprint(first, reindented) == fingerprint(first, UNIT)
    other = {
        fingerprint(attrs.evolve(first, category="security"), UNIT),
        fingerprint(attrs.evolve(first, end_line=7), UNIT),
        fingerprint(first, attrs.evolve(UNIT, qualified_name="Store.reload")),
        fingerprint(first, attrs.evolve(UNIT, text=TEXT.replace("eval(key)", "eval(key.strip())"))),
    }
    assert fingerprint(first, UNIT) not in other and len(other) == 4


def test_the_anchor_is_the_flagged_lines_normalised_and_capped():
    assert anchor_text(UNIT, 5, 6) == "for key in json.loads(data):\ncache[key] = eval(key)"
    long = Unit("python", "function", "f", 0, 20, "".join(f"x{i} = {i}\n\n" for i in range(10)))
    assert anchor_text(long, 1, 20) == "x0 = 0\nx1 = 1\nx2 = 2\nx3 = 3"  # 8 lines, blanks out


def test_a_dismissed_finding_stays_dismissed_when_reworded():
    said = candidate(6, category="security", message="eval is dangerous")
    key = fingerprint(said, UNIT)
    again = candidate(
        6, category="security", message="Never call eval() on file data", confidence=0.95
    )
    for verdicts in ({key: "dismissed"}, {key: "false-positive"}, {key}):
        result = filter_findings([again], UNIT, verdicts=verdicts)
        assert result.kept == () and result.dropped[0].reason == "the user dismissed this finding"
    # an accepted fix does not hide the problem coming back
    assert filter_findings([again], UNIT, verdicts={key: "accepted"}).kept[0].fingerprint == key
    # another category on the same lines is another finding
    perf = candidate(6, category="performance", message="eval in a loop is slow")
    assert len(filter_findings([perf], UNIT, verdicts={key: "dismissed"}).kept) == 1
    assert suppressed(key, {key: "dismissed"}) and not suppressed(key, {})


def test_one_finding_said_twice_is_kept_once_most_confident():
    low = candidate(6, message="eval is unsafe", confidence=0.6)
    high = candidate(6, message="Do not eval", confidence=0.9)
    result = filter_findings([low, high], UNIT)
    assert [k.candidate for k in result.kept] == [high]
    assert result.dropped[0].candidate == low and "more confident" in result.dropped[0].reason


def test_an_accepted_fix_is_recognised_when_applied_or_typed_equivalently():
    fix = SuggestedFix("cache[key] = eval(key)", "cache[key] = ast.literal_eval(key)")
    assert not fix_applied(fix, TEXT)
    assert fix_applied(fix, TEXT.replace("eval(key)", "ast.literal_eval(key)"))
    reformatted = "cache[key] = ast.literal_eval(\n            key\n        )"
    assert fix_applied(fix, TEXT.replace("cache[key] = eval(key)", reformatted))
    insertion = SuggestedFix("    return cache", "    cache.pop('', None)\n    return cache")
    assert fix_applied(
        insertion, TEXT.replace("    return cache", "    cache.pop('', None)\n    return cache")
    )
    assert not fix_applied(insertion, TEXT)
    deletion = SuggestedFix("    unused = 1\n", "")
    assert fix_applied(deletion, TEXT.replace("    unused = 1\n", ""))
    assert not fix_applied(deletion, TEXT)
