"""The eval dataset builder: mutants and clean edits written as one-hunk text changes, and the
kill logic run for real on a tiny in-repo package with its own tests (no network)."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from lsp_server.review.ai.eval.build import BuildError, Options, build
from lsp_server.review.ai.eval.dataset import dump, hunks, load
from lsp_server.review.ai.eval.seeding import clean_edits, mutants

TINY = Path(__file__).parent / "data" / "eval" / "tinypkg"


def _afters(variants, operator: str) -> list[str]:
    return [v.after for v in variants if v.operator == operator]


def test_each_operator_rewrites_only_its_text():
    source = (
        "def f(items, n, flag):\n"
        "    if n < 3 and not (flag or n):\n"
        "        return items[1:n]\n"
        "    return max(n, len(items)), range(n), f'{n < 3}'\n"
    )
    found = list(mutants("m.py", source))
    assert "    if n >= 3 and not (flag or n):\n" in "".join(_afters(found, "comparison flip"))
    assert any("if n < 3 and (flag or n):" in a for a in _afters(found, "removed not"))
    off = _afters(found, "off by one")
    assert any("items[2:n]" in a for a in off) and any("items[1:n + 1]" in a for a in off)
    assert any("range(n + 1)" in a for a in off)
    assert any("max(len(items), n)" in a for a in _afters(found, "swapped arguments"))
    assert any("if n < 4 and" in a for a in _afters(found, "changed constant"))
    for variant in found:
        ast.parse(variant.after)
        assert hunks(variant.before, variant.after) == 1
        assert variant.after.splitlines()[variant.line - 1] != source.splitlines()[variant.line - 1]
        assert "f'{n < 3}'" in variant.after  # nothing inside an f-string


def test_clean_edits_keep_behaviour_by_construction():
    source = (
        "def g(rows, key):\n"
        "    count = 0\n"
        "    limit = 10\n"
        "    for row in rows:\n"
        "        count += row.count\n"
        "    return count, limit\n"
        "\n"
        "\n"
        "def closure(x):\n"
        "    y = x\n"
        "    return lambda: y\n"
    )
    edits = list(clean_edits("m.py", source))
    renamed = _afters(edits, "rename local")
    # `count` is also an attribute name in g: renaming it is not safe; `limit` is. `y` is read
    # by the lambda: not renamed either.
    assert len(renamed) == 1
    assert "limit_value = 10" in renamed[0] and "row.count" in renamed[0]
    assert _afters(edits, "reorder statements") == [
        source.replace("    count = 0\n    limit = 10\n", "    limit = 10\n    count = 0\n")
    ]
    documented = _afters(edits, "add docstring")
    assert any('def g(rows, key):\n    """G."""\n    count = 0' in a for a in documented)
    assert any('def closure(x):\n    """Closure."""\n    y = x' in a for a in documented)


def test_the_package_tests_decide(tmp_path):
    project = tmp_path / "tinypkg"
    shutil.copytree(TINY, project)
    built = build(
        project,
        ["tinypkg/stats.py"],
        ["tests/check_stats.py"],
        Options(max_bugs=20, max_clean=3, budget_s=120),
        prefix="tiny",
    )
    bugs = [c for c in built.cases if c.label.kind == "bug"]
    cleans = [c for c in built.cases if c.label.kind == "clean"]
    # killed: `not` removed in mean, the sum starting at 1, the slice one longer; the flip in
    # untested() is covered by no test: it survives and is left out
    assert {c.label.note for c in bugs} == {
        "removed not: not values -> values",
        "changed constant: 0 -> 1",
        "off by one: n -> n + 1",
    }
    assert built.survived == 1
    for case in bugs:
        line = case.after.splitlines()[case.label.line - 1]
        assert line != case.before.splitlines()[case.label.line - 1]
    # clean edits the tests pass; the docstring for head() fails them and is left out
    assert [c.label.note for c in cleans] == [
        "rename local total -> total_value",
        "docstring for mean",
        "docstring for untested",
    ]
    assert built.failed_clean == 1
    assert all(hunks(c.before, c.after) == 1 for c in built.cases)
    dataset = tmp_path / "cases.jsonl"
    dump(built.cases, dataset)
    assert [c.id for c in load(dataset)] == [c.id for c in built.cases]
    assert load(dataset)[0].project == project.resolve()


def test_tests_that_fail_unchanged_stop_the_build(tmp_path):
    project = tmp_path / "broken"
    (project / "tests").mkdir(parents=True)
    (project / "mod.py").write_text("X = 1\n")
    (project / "tests" / "check_mod.py").write_text("def test_x():\n    assert False\n")
    with pytest.raises(BuildError, match="fail before any change"):
        build(project, ["mod.py"], ["tests/check_mod.py"], Options(budget_s=30))
