"""The parts of "Generate tests" from the editor that need no server: what the lenses and a
selection name, the snapshot of the project a run works on, the stages jobs are shown as, the
expected-failure test, and where the server may write (never through a symbolic link out of the
workspace folder)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lsp_server.testgen import jobs, targets
from lsp_server.testgen.candidates import Candidate
from lsp_server.testgen.delivery import write_inside
from lsp_server.testgen.possible_bugs import PossibleBug, as_expected_failure
from lsp_server.testgen.run_control import stage_of
from lsp_server.testgen.snapshot import copy_project

FIXTURE = Path(__file__).parent / "data" / "testgen" / "project"
MODULE = """\
import functools


def top(x):
    return x


@functools.cache
def cached(x):
    return x


class Shape:
    def area(self):
        return 0

    def _private(self):
        return 1

    async def grow(self):
        pass


def _hidden():
    pass
"""


def test_lenses_name_functions_classes_and_public_methods() -> None:
    found = [(s.name, s.kind, s.line) for s in targets.lensed_symbols(MODULE)]
    assert found == [
        ("top", "function", 4),
        ("cached", "function", 9),
        ("Shape", "class", 13),
        ("Shape.area", "method", 14),
        ("Shape.grow", "method", 20),
    ]


@pytest.mark.parametrize(
    ("lines", "names"),
    [
        ((5, 5), ["top"]),  # a cursor in a body
        ((8, 8), ["cached"]),  # on its decorator
        ((15, 15), ["Shape"]),  # in a method: its class
        ((4, 14), ["top", "cached", "Shape"]),
        ((1, 2), []),  # imports
        ((24, 25), []),  # private only
    ],
)
def test_a_selection_names_what_it_touches(lines: tuple[int, int], names: list[str]) -> None:
    assert [s.name for s in targets.symbols_in_lines(MODULE, *lines)] == names


def test_the_snapshot_holds_the_buffer_not_the_disk(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(FIXTURE, project)
    (project / "ruff.toml").write_text("line-length = 100\n")
    (project / "notes.txt").write_text("not bundled")
    module = project / "textutils.py"
    buffer = module.read_text() + "\n\ndef added(x):\n    return x\n"
    last = len(buffer.splitlines())
    real = targets.for_source(module, buffer, targets.symbols_in_lines(buffer, last, last))
    assert [s.name for s in real.symbols] == ["added"] and real.root == project
    copy = tmp_path / "copy"
    copy.mkdir()
    target = copy_project(real, {module: buffer}, copy)
    assert (target.root, target.path, target.module) == (copy, copy / "textutils.py", "textutils")
    assert (copy / "textutils.py").read_text() == buffer
    assert (copy / "tests" / "test_textutils.py").is_file()
    assert (copy / "ruff.toml").is_file() and not (copy / "notes.txt").exists()
    assert not (copy / jobs.DRIVER_DIR).exists()
    module.write_text("changed on disk during the run\n")
    assert (copy / "textutils.py").read_text() == buffer


def _spec(argv: list[str], ids: str | None = None):
    target = targets.resolve(str(FIXTURE / "textutils.py"))
    files = {"ids.txt": jobs.text_file(ids)} if ids is not None else {}
    return jobs.spec(target, {}, argv, timeout_s=5, extra_files=files)


def test_each_job_is_shown_as_its_stage() -> None:
    collect = ["python", "-I", "_gantry/d.py", "collect", "tests/test_gantry_a.py"]
    collect += ["tests/test_gantry_b.py", "--out", "collected.jsonl"]
    cases = [
        (_spec(["python", "_gantry/d.py", "ghostwrite", "m"]), "generate"),
        (_spec(["python", "_gantry/d.py", "crosshair", "m"]), "generate"),
        (_spec(["python", jobs.EXPLORER, "m", "--out", "x.py"]), "generate"),
        (_spec(collect), "collect"),
        (_spec(["python", "-m", "d", "rerun", "ids.txt", "--runs", "5"], "a\nb\n\n"), "rerun"),
        (_spec(["python", "-m", "d", "cover", "ids.txt"], "a\nb\nc\n"), "coverage"),
    ]
    shown = [stage_of(spec) for spec, _ in cases]
    assert [stage for stage, _ in shown] == [stage for _, stage in cases]
    assert shown[2][1] == "coverage-guided search"
    assert shown[3][1] == "2 candidate(s)"
    assert shown[4][1] == "2 test(s) x 5 runs in random order"
    assert shown[5][1] == "3 test(s) under coverage.py"


def test_an_expected_failure_is_strict_and_imports_pytest() -> None:
    candidate = Candidate(
        "hand-1",
        "hand",
        "test_one",
        "def test_one():\n    assert f(1) == 2\n",
        ("from m import f",),
    )
    bug = PossibleBug(candidate, "assert 1 == 2\n +  where 1 = f(1)", "assert f(1) == 2", 5)
    xfail = as_expected_failure(bug)
    assert xfail.source.startswith(
        "@pytest.mark.xfail(strict=True, reason='possible bug: assert 1 == 2')\ndef test_one():"
    )
    assert xfail.imports == ("import pytest", "from m import f")


def test_the_server_writes_only_inside_the_folder_never_through_a_link(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    outside = tmp_path / "outside"
    (root / "tests").mkdir(parents=True)
    outside.mkdir()
    write_inside(root, root / "tests" / "new" / "test_a.py", "x = 1\n")
    assert (root / "tests" / "new" / "test_a.py").read_text() == "x = 1\n"

    os.symlink(outside, root / "linked")
    os.symlink(outside / "target.py", root / "tests" / "test_link.py")
    for path in (
        root / "linked" / "test_b.py",  # a folder that is a link out
        root / "tests" / "test_link.py",  # a file that is a link out
        root / ".." / "outside" / "test_c.py",  # a path that climbs out
        tmp_path / "elsewhere.py",
    ):
        with pytest.raises(OSError):
            write_inside(root, path, "escaped\n")
    assert list(outside.iterdir()) == []
