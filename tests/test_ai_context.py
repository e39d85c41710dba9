"""Context packs from a real indexed workspace: the standard library's json package and its
own tests (Lib/test/test_json), in a real store."""

from __future__ import annotations

import shutil
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from lsp_server.analysis.indexer import Indexer
from lsp_server.analysis.languages import language_for_path
from lsp_server.config import Settings
from lsp_server.review.ai.context import (
    ContextPack,
    build_pack,
    is_test_path,
    item_tokens,
    neighbourhood,
    neighbourhoods,
    pack_digest,
    personalised_pagerank,
)
from lsp_server.review.ai.units import Unit, split_units
from lsp_server.review.findings import Finding
from lsp_server.store import Store, Verdict

STDLIB = Path(sysconfig.get_paths()["stdlib"])
DATA = Path(__file__).parent / "data" / "units"
_SKIP = shutil.ignore_patterns("__pycache__")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("json-ws")
    shutil.copytree(STDLIB / "json", root / "json", ignore=_SKIP)
    shutil.copytree(STDLIB / "test" / "test_json", root / "test" / "test_json", ignore=_SKIP)
    shutil.copytree(DATA, root / "fixtures")
    return root


@pytest.fixture
def store(workspace: Path, tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store.db") as opened:
        Indexer(opened, workspace, Settings()).index_all()
        yield opened


def _unit(root: Path, path: str, name: str, source: str | None = None) -> Unit:
    text = (root / path).read_text() if source is None else source
    language = language_for_path(path)
    assert language is not None
    return next(u for u in split_units(language, text) if u.name == name)


def _pack(store: Store, unit: Unit, path: str, **options) -> ContextPack:
    return build_pack(unit, path, neighbourhood(store, unit), **options)


def test_a_pack_holds_definitions_callers_and_tests(store: Store, workspace: Path) -> None:
    unit = _unit(workspace, "json/encoder.py", "JSONEncoder.encode")
    pack = _pack(store, unit, "json/encoder.py", budget=100_000)
    items = {(item.kind, item.path, item.name) for item in pack.items}
    assert ("definition", "json/encoder.py", "JSONEncoder.iterencode") in items
    assert ("caller", "json/__init__.py", "dumps") in items
    tests = [item for item in pack.items if item.kind == "test"]
    assert tests and all(item.path.startswith("test/test_json/") for item in tests)
    assert not any(name == "JSONEncoder.encode" for _, _, name in items)  # not itself
    iterencode = next(item for item in pack.items if item.name == "JSONEncoder.iterencode")
    assert iterencode.text.startswith("def iterencode(self, o, _one_shot=False)")
    assert "Encode the given object" in iterencode.text  # its docstring
    assert "json/__init__.py:dumps" in pack.symbols
    assert pack.omitted == 0 and pack.tokens > 0


def test_the_budget_cuts_the_lowest_ranked_items(store: Store, workspace: Path) -> None:
    unit = _unit(workspace, "json/__init__.py", "dumps")
    full = _pack(store, unit, "json/__init__.py", budget=100_000)
    assert full.omitted == 0 and len(full.items) > 5
    for budget in (0, 30, 120, 400):
        pack = _pack(store, unit, "json/__init__.py", budget=budget)
        assert pack.tokens <= budget
        assert len(pack.items) + pack.omitted == len(full.items)
        assert set(pack.items) <= set(full.items)
    assert _pack(store, unit, "json/__init__.py", budget=0).items == ()
    assert _pack(store, unit, "json/__init__.py", budget=0).digest == pack_digest(())
    # Ranked only when something must be cut: then best first, and the best is what a budget
    # with room for one item keeps.
    best = _pack(store, unit, "json/__init__.py", budget=full.tokens - 1).items[0]
    assert _pack(store, unit, "json/__init__.py", budget=item_tokens(best)).items == (best,)
    # dumps's work is `cls(...).encode(obj)`: what it calls ranks first.
    assert (best.kind, best.path, best.name) == (
        "definition",
        "json/encoder.py",
        "JSONEncoder.encode",
    )


def test_the_digest_depends_on_content_only(store: Store, workspace: Path) -> None:
    unit = _unit(workspace, "json/encoder.py", "JSONEncoder.encode")
    symbols = neighbourhood(store, unit)
    pack = build_pack(unit, "json/encoder.py", symbols)
    again = build_pack(unit, "json/encoder.py", tuple(reversed(symbols)))
    assert again.digest == pack.digest and again.items == pack.items
    assert pack_digest(reversed(pack.items)) == pack.digest
    assert build_pack(unit, "json/encoder.py", symbols[:-3]).digest != pack.digest


def test_lines_moving_elsewhere_keep_the_digest_and_a_new_signature_changes_it(
    store: Store, workspace: Path, tmp_path: Path
) -> None:
    root = tmp_path / "moved"
    shutil.copytree(workspace, root)
    with Store.open(tmp_path / "moved.db") as moved:
        indexer = Indexer(moved, root, Settings())
        indexer.index_all()
        unit = _unit(root, "json/encoder.py", "JSONEncoder.encode")
        before = _pack(moved, unit, "json/encoder.py")
        caller = root / "json" / "__init__.py"
        source = caller.read_text()
        caller.write_text("# a comment\n\n\n" + source)
        indexer.index_paths([caller])
        assert _pack(moved, unit, "json/encoder.py").digest == before.digest
        caller.write_text(source.replace("def dumps(obj, *,", "def dumps(obj, *, strict=False,"))
        indexer.index_paths([caller])
        after = _pack(moved, unit, "json/encoder.py")
        assert after.digest != before.digest
        assert any("strict=False" in item.text for item in after.items)


def test_diagnostics_on_the_unit_and_verdicts_in_its_file_come_first(
    store: Store, workspace: Path
) -> None:
    path = "json/encoder.py"
    source = (workspace / path).read_text()
    unit = _unit(workspace, path, "JSONEncoder.encode")
    inside = Finding(
        "E711",
        "comparison to None",
        "error",
        (unit.start_line + 2, 4),
        (unit.start_line + 2, 8),
        "ruff",
    )
    outside = Finding("F401", "unused import", "warning", (0, 0), (0, 4), "ruff")
    verdicts = [
        Verdict("fp1", "false_positive", "gantry-ai/bug", path, "o may be None"),
        Verdict("fp2", "dismissed", "E501", "json/decoder.py", "line too long"),
    ]
    pack = _pack(store, unit, path, diagnostics=[outside, inside], verdicts=verdicts)
    assert [(i.kind, i.name, i.text) for i in pack.items[:2]] == [
        ("diagnostic", "E711", "line 3: comparison to None"),
        ("verdict", "gantry-ai/bug", "false_positive: o may be None"),
    ]
    assert {item.kind for item in pack.items[2:]} <= {"definition", "caller", "test"}
    # Three lines inserted above the unit: it, its finding and so its pack move together.
    shifted = _unit(workspace, path, "JSONEncoder.encode", "#\n#\n#\n" + source)
    moved = Finding(
        "E711",
        "comparison to None",
        "error",
        (inside.start[0] + 3, 4),
        (inside.start[0] + 3, 8),
        "ruff",
    )
    again = _pack(store, shifted, path, diagnostics=[moved], verdicts=verdicts)
    assert again.digest == pack.digest


def test_every_language_gets_its_definitions_and_callers(store: Store, workspace: Path) -> None:
    take = _unit(workspace, "fixtures/inventory.js", "Inventory.take")
    items = {(i.kind, i.name) for i in _pack(store, take, "fixtures/inventory.js").items}
    assert ("definition", "Inventory.remaining") in items
    report = _unit(workspace, "fixtures/inventory.go", "Report")
    items = {(i.kind, i.name) for i in _pack(store, report, "fixtures/inventory.go").items}
    assert ("definition", "Stock") in items
    stock_take = _unit(workspace, "fixtures/inventory.rs", "Stock.take")
    pack = _pack(store, stock_take, "fixtures/inventory.rs", budget=100_000)
    assert ("caller", "take_more_than_there_is") in {(i.kind, i.name) for i in pack.items}
    total = _unit(workspace, "fixtures/inventory.ts", "Store.total")
    items = {(i.kind, i.name) for i in _pack(store, total, "fixtures/inventory.ts").items}
    assert ("definition", "Store.price") in items


def test_test_files_are_told_by_their_paths() -> None:
    for path in ("tests/test_a.py", "test/x.py", "pkg/a_test.go", "src/a.test.ts", "a.spec.jsx"):
        assert is_test_path(path), path
    for path in ("src/testing.py", "contest.py", "latest/a.go", "src/attest.ts"):
        assert not is_test_path(path), path


def test_pagerank_restarting_at_one_node() -> None:
    # a -> b, b dangling: b = d*a; a = (1 - d) + d*b, so a = 1/(1 + d), b = d/(1 + d).
    rank = personalised_pagerank({"a": {"b": 1.0}}, {"a": 1.0}, damping=0.85)
    assert rank["a"] == pytest.approx(1 / 1.85) and rank["b"] == pytest.approx(0.85 / 1.85)
    # A node that two paths reach outranks one reached once, with equal weights.
    edges = {"u": {"x": 1.0, "y": 1.0}, "x": {"z": 1.0}, "y": {"z": 1.0, "w": 1.0}}
    rank = personalised_pagerank(edges, {"u": 1.0})
    assert rank["z"] > rank["w"] and sum(rank.values()) == pytest.approx(1.0)


def test_neighbourhoods_read_once_per_file_and_cap_each_name(store: Store, workspace: Path) -> None:
    units = split_units("python", (workspace / "json/encoder.py").read_text())
    together = neighbourhoods(store, units)
    assert together == tuple(neighbourhood(store, unit) for unit in units)
    # A popular name is capped, in path order.
    everything = store.neighbourhood([], ["encode"])
    capped = store.neighbourhood([], ["encode"], per_name=2)
    assert len(everything) > 2 and capped == everything[:2]
