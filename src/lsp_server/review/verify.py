""" "Apply and verify": which tests cover a fixed unit, the exec job that runs them, and what its
result says. Plain data on snapshots and files; the server's FixVerifier sends the job through
the folder's dispatcher (the gateway when up, the local bubblewrap sandbox otherwise).

Which tests: the Python test files pytest would collect by default (`test_*.py`, `*_test.py`)
under the workspace folder, not ignored (.gitignore, the index exclude setting), that mention
the unit's short name as a whole word (`method` of `Class.method`; the class's name for a
dunder method such as `__init__`). Top-level blocks have no name, so no test covers them.

What is sent: the fixed file as fixed, the covering tests, then every other Python file of the
folder (conftest.py files first) and the root's pytest configuration, open documents as the
editor holds them, each no larger than the folder's max_file_size, privacy-excluded paths never,
until `MAX_BUNDLE_FILES` files or `MAX_BUNDLE_BYTES` bytes: the project's own modules are
importable inside, as they are at home. The sandbox has no network and sees only the bundle,
the system and the interpreter the server runs with (read-only): `python3` on its PATH is that
interpreter (the gateway's own, when the job runs there), so pytest must be installed in it.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from lsp_server.analysis.workspace_files import IgnoreRules, walk_source_files
from lsp_server.review.ai.units import Unit, split_units
from lsp_server.review.findings import Edit, split_lines
from remote_exec.bundle import MiB
from remote_exec.jobs import ExecSpec

MAX_BUNDLE_FILES = 1000
MAX_BUNDLE_BYTES = 8 * MiB
"""The bundle's bounds (the gateway takes 2,000 files and a 32 MiB body, base64 included)."""
MAX_TEST_FILES = 200
"""Test files run at most (the first by path): each is an argument, and the gateway takes 256."""
TIMEOUT_S = 120.0
JUNIT = ".gantry-verify/junit.xml"
"""Where pytest writes its report inside the job: the counts and the first failure come from it."""
CONFIG_FILES = ("pyproject.toml", "pytest.ini", "tox.ini", "setup.cfg")
_TEST_NAME = re.compile(r"(^|/)(test_[^/]*|[^/]*_test)\.py$")


@attrs.frozen
class Plan:
    """What one verification runs, or why nothing runs (`tests` empty)."""

    name: str | None
    """The name the tests were searched for; None for a unit that has none."""
    tests: tuple[str, ...]
    """Workspace-relative test files, the job's pytest arguments."""
    spec: ExecSpec | None = None
    left_out: int = 0
    """Python files of the folder that did not fit in the bundle (or were too large)."""


@attrs.frozen
class Outcome:
    passed: int
    failed: int
    """Failures and errors."""
    skipped: int
    first_failure: str | None
    """`test id: the assertion's first line`, of the first test that failed."""
    problem: str | None = None
    """Why the tests did not run to a report (timeout, pytest missing, collection failed)."""

    @property
    def ok(self) -> bool:
        return self.problem is None and self.failed == 0 and self.passed > 0


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """`text` with `edits` (code-point positions, not overlapping) applied."""
    lines = split_lines(text)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(position: tuple[int, int]) -> int:
        line, column = position
        return starts[min(line, len(lines))] + column

    for edit in sorted(edits, key=lambda e: offset(e.start), reverse=True):
        text = text[: offset(edit.start)] + edit.new_text + text[offset(edit.end) :]
    return text


def unit_at(language: str, text: str, line: int) -> Unit | None:
    """The unit whose lines hold document line `line`."""
    return next((u for u in split_units(language, text) if u.unit_line(line) is not None), None)


def covering_name(unit: Unit | None) -> str | None:
    """The name tests call the unit by: see the module docstring."""
    if unit is None or unit.kind in ("block", "imports"):
        return None
    parts = unit.name.split(".")
    if parts[-1].startswith("__") and parts[-1].endswith("__") and len(parts) > 1:
        return parts[-2]
    return parts[-1]


def is_pytest_file(path: str) -> bool:
    return bool(_TEST_NAME.search(path))


def plan(
    root: Path,
    path: str,
    fixed_text: str,
    name: str | None,
    *,
    open_texts: Mapping[str, str],
    ignore: Iterable[str],
    private: Iterable[str],
    max_file_bytes: int,
) -> Plan:
    """The job verifying the fix of the file at `path` (relative to `root`), now `fixed_text`.
    `open_texts`: relative path -> the editor's text of open documents; `ignore`: the index
    exclude globs; `private`: the privacy exclude globs (never bundled)."""
    from remote_exec.inference.exclusion import is_excluded

    if name is None:
        return Plan(None, ())
    word = re.compile(rf"(?<![\w]){re.escape(name)}(?![\w])")
    texts: dict[str, str | None] = {}

    def text_of(rel: str) -> str | None:
        if rel not in texts:
            if rel == path:
                texts[rel] = fixed_text
            elif rel in open_texts:
                texts[rel] = open_texts[rel]
            else:
                try:
                    file = root / rel
                    texts[rel] = (
                        file.read_text("utf-8") if file.stat().st_size <= max_file_bytes else None
                    )
                except (OSError, UnicodeDecodeError):
                    texts[rel] = None
        return texts[rel]

    python = [
        rel
        for rel in walk_source_files(root, IgnoreRules(root, ignore))
        if rel.endswith(".py") and not is_excluded(rel, private)
    ]
    tests = [
        rel for rel in python if is_pytest_file(rel) and (t := text_of(rel)) and word.search(t)
    ]
    if not tests:
        return Plan(name, ())
    conftests = [rel for rel in python if rel.rsplit("/", 1)[-1] == "conftest.py"]
    configs = [
        rel for rel in CONFIG_FILES if (root / rel).is_file() and not is_excluded(rel, private)
    ]
    order = list(dict.fromkeys([path, *tests, *conftests, *configs, *python]))
    files: dict[str, str] = {}
    size = 0
    left_out = 0
    for rel in order:
        text = text_of(rel)
        data = text.encode("utf-8") if text is not None else None
        if data is None or len(files) >= MAX_BUNDLE_FILES or size + len(data) > MAX_BUNDLE_BYTES:
            left_out += rel.endswith(".py")
            continue
        files[rel] = base64.b64encode(data).decode("ascii")
        size += len(data)
    tests = [rel for rel in tests if rel in files][:MAX_TEST_FILES]
    if path not in files or not tests:
        return Plan(name, (), left_out=left_out)
    # A src layout's packages import as they do once installed; the root's as from the root.
    pythonpath = "src:." if any(rel.startswith("src/") for rel in files) else "."
    spec = ExecSpec(
        files=files,
        argv=[
            "python3",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={JUNIT}",
            *tests,
        ],
        env={"PYTHONPATH": pythonpath},
        timeout_s=TIMEOUT_S,
        artifacts=[JUNIT],
    )
    return Plan(name, tuple(tests), spec, left_out)


def read_result(result: Mapping) -> Outcome:
    """An exec job's result (an unstructured ExecResult) as counts and the first failure."""
    report = result.get("artifacts", {}).get(JUNIT)
    if result.get("state") == "timed_out":
        return Outcome(0, 0, 0, None, f"the tests did not finish within {TIMEOUT_S:.0f} s")
    if result.get("state") == "cancelled":
        return Outcome(0, 0, 0, None, "the run was cancelled")
    output = f"{result.get('stdout_tail', '')}\n{result.get('stderr_tail', '')}"
    if report is None:
        if "No module named pytest" in output:
            return Outcome(
                0, 0, 0, None, "pytest is not installed in the interpreter the tests run with"
            )
        last = next((ln for ln in reversed(output.strip().splitlines()) if ln.strip()), "")
        why = f": {last.strip()}" if last else ""
        return Outcome(0, 0, 0, None, f"pytest exited {result.get('exit_code')}{why}")
    try:
        root = ET.fromstring(base64.b64decode(report))
    except ET.ParseError as exc:
        return Outcome(0, 0, 0, None, f"pytest's report cannot be read ({exc})")
    passed = failed = skipped = 0
    first = None
    for case in root.iter("testcase"):
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            failed += 1
            if first is None:
                first = f"{_test_id(case)}: {_first_line(bad)}"
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    # A collection error is an <error> outside any test case in some pytest versions' reports.
    problem = None
    if passed + failed + skipped == 0:
        problem = "no tests ran" + (f" ({_tail(output)})" if result.get("exit_code") else "")
    return Outcome(passed, failed, skipped, first, problem)


def _test_id(case: ET.Element) -> str:
    classname, name = case.get("classname", ""), case.get("name", "")
    return f"{classname.replace('.', '/')}::{name}" if classname else name


def _first_line(element: ET.Element) -> str:
    for text in (element.get("message"), element.text):
        line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
        if line:
            return line
    return "(no message)"


def _tail(output: str) -> str:
    return next((ln.strip() for ln in reversed(output.strip().splitlines()) if ln.strip()), "")
