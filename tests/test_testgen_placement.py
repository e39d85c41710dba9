"""Where kept tests go and how they are merged: the project's layout, no duplicate imports or
names in an existing test file, formatted by the real ruff when the project uses ruff."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from lsp_server.config import Settings
from lsp_server.review.ruff_engine import find_ruff
from lsp_server.testgen.candidates import Candidate, split_tests
from lsp_server.testgen.placement import detect_layout, merge, place
from lsp_server.testgen.targets import resolve

FIXTURE = Path(__file__).parent / "data" / "testgen" / "project"

CROSSHAIR_OUTPUT = """from textutils import clamp
from textutils import decode_runs
import pytest

def test_clamp_inside():
    assert clamp(1, 0, 0) == 0

def test_clamp_2():
    with pytest.raises(ValueError, match='empty\\\\ range'):
        clamp(0, 1, 0)

def test_decode_runs():
    assert decode_runs([]) == ''
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root)
    return root


def top_level(text: str) -> tuple[list[str], list[str]]:
    tree = ast.parse(text)
    imports = [ast.unparse(n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    return imports, names


def test_a_tests_tree_is_where_tests_go(project: Path) -> None:
    layout = detect_layout(resolve(str(project / "textutils.py")))
    assert layout.style == "tests-tree"
    assert layout.test_file == project / "tests" / "test_textutils.py"
    assert layout.suite == (project / "tests" / "test_textutils.py",)
    assert layout.uses_ruff


def test_tests_beside_modules_stay_beside(tmp_path: Path) -> None:
    (tmp_path / "setup.cfg").write_text("")
    (tmp_path / "calc.py").write_text("def add(a: int, b: int) -> int:\n    return a + b\n")
    (tmp_path / "test_other.py").write_text("def test_nothing():\n    pass\n")
    layout = detect_layout(resolve(str(tmp_path / "calc.py")))
    assert (layout.style, layout.test_file) == ("beside", tmp_path / "test_calc.py")
    assert not layout.uses_ruff


def test_merging_adds_no_duplicate_imports_or_names(project: Path) -> None:
    existing = (project / "tests" / "test_textutils.py").read_text()
    kept = split_tests(CROSSHAIR_OUTPUT, "crosshair")
    text, renamed = merge(existing, kept)
    imports, names = top_level(text)
    assert len(imports) == len(set(imports))
    # The file's own `from textutils import clamp` takes the new name: one import per module.
    assert imports == ["import pytest", "from textutils import clamp, decode_runs"]
    assert names == [
        "test_clamp_inside",
        "test_clamp_rejects_an_empty_range",
        "test_clamp_inside_2",  # the existing file had this name: the candidate's is renamed
        "test_clamp_2",
        "test_decode_runs",
    ]
    assert renamed == (("test_clamp_inside", "test_clamp_inside_2"),)
    assert text.startswith("import pytest\n\nfrom textutils import clamp, decode_runs\n\n\n")


def test_imports_no_test_uses_are_left_out() -> None:
    kept = [c for c in split_tests(CROSSHAIR_OUTPUT, "crosshair") if c.name == "test_decode_runs"]
    imports, _ = top_level(merge("", kept)[0])
    assert imports == ["from textutils import decode_runs"]  # not pytest, not clamp


def test_placement_is_formatted_with_ruff(project: Path) -> None:
    kept = [
        Candidate(
            "crosshair-1",
            "crosshair",
            "test_decode_runs",
            "def test_decode_runs():\n    assert decode_runs([('a',2)]) == 'aa'\n",
            ("from textutils import decode_runs",),
        )
    ]
    layout = detect_layout(resolve(str(project / "textutils.py")))
    placed = place(kept, layout, project, ruff=find_ruff(Settings()))
    assert not placed.created and placed.path == layout.test_file
    assert 'assert decode_runs([("a", 2)]) == "aa"' in placed.text  # ruff's quotes, spaces
    assert "from textutils import clamp, decode_runs\n" in placed.text
    compile(placed.text, str(placed.path), "exec")
