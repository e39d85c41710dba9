"""The coverage-guided search engine for real: it runs as an exec job in the bubblewrap sandbox
on small projects written here, and what it writes is read back as candidates.

It must find what only the project's own literals lead to, write tests that pass against the
code as it is, assert nothing it saw change between two calls, and render nothing the code
under test chose as source (a hostile ``repr``, attribute name or class name)."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from lsp_server.testgen import candidates, jobs, targets
from remote_exec.jobs import ExecSpec, Resources
from remote_exec.sandbox import Sandbox

ENGINE_S = 30.0
"""The search's deadline: given 5 s it reached the deep branch with 6 seeds of 6 (given 3 s,
with none: the hanging call eats its limit), so the rest is room for a loaded machine."""

SECTIONS = '''
"""A tiny docstring-section reader."""
import random
import time

TITLES = {"Args:": "args", "Returns:": "returns", "Raises:": "raises"}


class Section:
    def __init__(self, kind: str, items: list[str]) -> None:
        self.kind = kind
        self.items = items


def sections(text: str) -> list[Section]:
    found: list[Section] = []
    for line in text.splitlines():
        title = TITLES.get(line.strip())
        if title is not None:
            found.append(Section(title, []))
        elif line.startswith("    ") and found:
            found[-1].items.append(line.strip())
    kinds = [s.kind for s in found]
    if "args" in kinds:
        if "returns" in kinds:
            if any(s.items for s in found):
                return [Section("both", []), *found]  # only mixed, filled sections get here
    return found


def ratio(a: int, b: int) -> float:
    if b == 0:
        raise ZeroDivisionError("b is zero")
    return a / b


def stamp(text: str) -> dict:
    """Half of what this returns changes between calls: only the rest may be asserted."""
    return {"text": text.upper(), "at": time.time(), "roll": random.random()}


def spin(n: int) -> int:
    while n == 7:  # hangs on one input: the search must go on past it
        pass
    return n * 2


class Tally:
    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = dict(counts)

    def add(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n
'''

HOSTILE = '''
"""Values that try to write code into the tests that will be written about them."""
import enum


class Shout(str):
    def __repr__(self):
        return "__import__('os').system('echo owned')"


class Sneaky:
    pass


Sneaky.__qualname__ = "os.system"


class Flag(enum.Enum):
    ON = 1


def speak(text: str):
    return Shout(text)


def sneaky(text: str):
    box = Sneaky()
    setattr(box, "x == 1 or __import__('os')", text)
    box.fine = text[:3]
    return box


def listed(text: str):
    return [Shout(text), len(text)]
'''


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> jobs.RunJob:
    if (problem := Sandbox().check()) is not None:
        pytest.fail(problem)  # the engine runs the code under test: only ever sandboxed
    return jobs.local_runner(work_root=tmp_path_factory.mktemp("jobs"))


def explored(root: Path, name: str, source: str, run: jobs.RunJob) -> candidates.EngineRun:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("")
    (root / f"{name}.py").write_text(textwrap.dedent(source))
    target = targets.resolve(str(root / f"{name}.py"))
    return candidates.explore(target, run, ENGINE_S, jobs.project_bundle(target))


@pytest.fixture(scope="module")
def sections_run(tmp_path_factory: pytest.TempPathFactory, run: jobs.RunJob):
    return explored(tmp_path_factory.mktemp("sections"), "sections", SECTIONS, run)


def test_the_project_literals_lead_the_search_where_random_text_does_not(sections_run) -> None:
    assert sections_run.problem is None
    sources = {c.name: c.source for c in sections_run.candidates}
    assert sources and all(name.startswith("test_") for name in sources)
    # The deep branch needs two titles from TITLES and an indented line after one of them.
    assert any("== 'both'" in s for s in sources.values()), "\n\n".join(sources.values())
    assert any("pytest.raises(ZeroDivisionError)" in s for s in sources.values())


def test_its_tests_pass_against_the_code_as_it_is(sections_run, run: jobs.RunJob) -> None:
    module = "\n".join(sections_run.candidates[0].imports)
    module += "\n\n\n" + "\n\n\n".join(c.source for c in sections_run.candidates) + "\n"
    ast.parse(module)
    bundle = {
        "sections.py": jobs.text_file(textwrap.dedent(SECTIONS)),
        "test_explored.py": jobs.text_file(module),
    }
    result = run(
        ExecSpec(
            files=bundle,
            argv=["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_explored.py"],
            env={"PYTHONPATH": "/job", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
            timeout_s=60,
            resources=Resources(cpus=1, memory_mb=1024),
        )
    )
    assert result.exit_code == 0, result.stdout_tail + result.stderr_tail
    assert f"{len(sections_run.candidates)} passed" in result.stdout_tail


def test_what_changes_between_calls_is_not_asserted(sections_run) -> None:
    stamps = [c.source for c in sections_run.candidates if "stamp(" in c.source]
    assert stamps, "the search called stamp() and kept a test of it"
    for source in stamps:
        assert "result['text'] ==" in source or "result == " not in source
        assert "result['at']" not in source and "result['roll']" not in source


def test_a_call_that_hangs_costs_its_time_limit_only(sections_run) -> None:
    spins = [c.source for c in sections_run.candidates if "spin(" in c.source]
    assert spins and not any("spin(7)" in s for s in spins)


def test_a_method_is_judged_by_what_it_does_to_its_object(sections_run) -> None:
    adds = [c.source for c in sections_run.candidates if ".add(" in c.source]
    assert adds, "the search called Tally.add and kept a test of it"
    # The object is made from a dict, and what add() left in it is asserted.
    assert any("obj = Tally({" in s and "assert obj.counts == {" in s for s in adds), adds


def test_nothing_the_code_chose_is_written_as_source(tmp_path: Path, run: jobs.RunJob) -> None:
    result = explored(tmp_path / "hostile", "hostile", HOSTILE, run)
    assert result.problem is None
    written = "\n".join([*result.candidates[0].imports, *(c.source for c in result.candidates)])
    assert result.candidates, "the plain parts are still asserted"
    assert "__import__" not in written and "os.system" not in written and "owned" not in written
    assert any(".fine ==" in c.source for c in result.candidates)
    for c in result.candidates:
        tree = ast.parse(c.source)
        calls = {
            n.func.id
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        }
        assert calls <= {"speak", "sneaky", "listed", "len", "isinstance"}, c.source
