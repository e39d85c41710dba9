"""Fingerprints survive line shifts and edits elsewhere; they change with the flagged code."""

from __future__ import annotations

from lsp_server.analysis.fingerprint import fingerprint_findings
from lsp_server.review.findings import Finding

SOURCE = """import os

class Shop:
    def pay(self, amount):
        try:
            charge(amount)
        except:
            pass

    def refund(self, amount):
        try:
            charge(-amount)
        except:
            pass
"""


def _finding(text: str, line_text: str, nth: int = 0, rule: str = "E722") -> Finding:
    lines = text.splitlines()
    line = [i for i, line in enumerate(lines) if line.strip() == line_text][nth]
    return Finding(rule, "msg", "info", (line, 8), (line, 14), "ruff")


def _fp(text: str, line_text: str, nth: int = 0, rule: str = "E722") -> str:
    return fingerprint_findings([_finding(text, line_text, nth, rule)], text, "python")[
        0
    ].fingerprint


def test_same_text_in_different_scopes_differs():
    assert _fp(SOURCE, "except:", 0) != _fp(SOURCE, "except:", 1)


def test_survives_line_shifts_and_edits_elsewhere():
    shifted = "# header\n\n" + SOURCE.replace("charge(amount)", "charge(amount, currency)")
    assert _fp(shifted, "except:", 0) == _fp(SOURCE, "except:", 0)
    assert _fp(shifted, "except:", 1) == _fp(SOURCE, "except:", 1)


def test_changes_when_the_flagged_code_or_its_scope_changes():
    assert _fp(
        SOURCE.replace(
            "    except:\n            pass\n\n    def refund",
            "    except :\n            pass\n\n    def refund",
        ),
        "except :",
        0,
    ) != _fp(SOURCE, "except:", 0)
    renamed = SOURCE.replace("def pay(", "def settle(")
    assert _fp(renamed, "except:", 0) != _fp(SOURCE, "except:", 0)
    assert _fp(SOURCE, "except:", 0, rule="S110") != _fp(SOURCE, "except:", 0)


def test_identical_findings_in_one_scope_are_ranked():
    text = "def f():\n    x = 1\n    x = 1\n"
    a = Finding("F841", "m", "warning", (1, 4), (1, 5), "ruff")
    b = Finding("F841", "m", "warning", (2, 4), (2, 5), "ruff")
    first, second = fingerprint_findings([a, b], text, "python")
    assert first.fingerprint != second.fingerprint
    # inserting a line above both keeps both
    moved = fingerprint_findings(
        [
            Finding("F841", "m", "warning", (2, 4), (2, 5), "ruff"),
            Finding("F841", "m", "warning", (3, 4), (3, 5), "ruff"),
        ],
        "def f():\n    y = 0\n    x = 1\n    x = 1\n",
        "python",
    )
    assert [f.fingerprint for f in moved] == [first.fingerprint, second.fingerprint]


def test_unparsed_languages_still_get_fingerprints():
    text = "a\nb\n"
    (finding,) = fingerprint_findings(
        [Finding("X1", "m", "info", (1, 0), (1, 1), "other")], text, None
    )
    assert finding.fingerprint
