"""Build a dataset from a project with tests: mutants the project's own tests kill are the
seeded bugs, clean edits its tests still pass are the clean changes.

The project is copied to a scratch folder once; each variant is written there, the tests run
(`python -m pytest`, the copy first on the path), and the file is put back. A mutant counts when
the tests fail, error or run out of time; a clean edit when they pass. Only one-hunk changes
are tried. Caps and a time budget keep a build short; what was tried is reported.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import attrs

from lsp_server.review.ai.eval.dataset import Case, Label, hunks
from lsp_server.review.ai.eval.seeding import Variant, clean_edits, mutants

Progress = Callable[[str], None]
_PASSED, _NO_TESTS = 0, 5  # pytest's exit codes


class BuildError(Exception):
    pass


@attrs.frozen
class Options:
    max_bugs: int = 20
    max_clean: int = 20
    budget_s: float = 600.0
    """Wall time for all test runs; the build stops trying when it is spent."""
    test_timeout_s: float = 120.0
    """A test run longer than this is a mutant that hangs: killed."""
    seed: int = 0
    plugins: bool = False
    """Let pytest load the plugins installed beside it. Off by default: they are this
    environment's, not the project's, and loading them costs most of a small test run."""


@attrs.frozen
class Built:
    cases: tuple[Case, ...]
    tried: int
    survived: int
    """Mutants the tests did not kill (left out)."""
    failed_clean: int
    """Clean edits the tests failed on (left out: the edit was not clean after all)."""
    out_of_time: bool


def build(
    project: Path,
    sources: Sequence[str],
    tests: Sequence[str],
    options: Options = Options(),
    *,
    prefix: str = "case",
    progress: Progress | None = None,
) -> Built:
    """Cases from the modules `sources` (paths relative to `project`), judged by the tests at
    `tests` (relative paths given to pytest). Each case names `project` as its snapshot."""
    say = progress or (lambda message: None)
    deadline = time.monotonic() + options.budget_s
    with tempfile.TemporaryDirectory(prefix="gantry-eval-build-") as scratch:
        work = Path(scratch) / "project"
        shutil.copytree(project, work, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        runner = _Tests(work, tests, options.test_timeout_s, options.plugins)
        if runner.run() != _PASSED:
            raise BuildError(f"the tests of {project} fail before any change: nothing to measure")
        texts = {path: (project / path).read_text(encoding="utf-8") for path in sources}
        rng = random.Random(options.seed)
        bugs = _shuffled(rng, (m for path, text in texts.items() for m in mutants(path, text)))
        cleans = _interleaved(clean_edits(path, text) for path, text in texts.items())
        kept: list[Variant] = []
        tried = survived = failed_clean = 0
        out_of_time = False
        for variants, cap, wanted in (
            (bugs, options.max_bugs, "bug"),
            (cleans, options.max_clean, "clean"),
        ):
            found = 0
            for variant in variants:
                if found >= cap:
                    break
                if time.monotonic() >= deadline:
                    out_of_time = True
                    break
                if hunks(variant.before, variant.after) != 1:
                    continue
                tried += 1
                code = runner.run_with(variant.path, variant.after)
                killed = code not in (_PASSED, _NO_TESTS)
                if (wanted == "bug") == killed:
                    kept.append(variant)
                    found += 1
                    say(
                        f"{variant.kind} {found}/{cap}: {variant.path}:{variant.line} {variant.note}"
                    )
                elif wanted == "bug":
                    survived += 1
                else:
                    failed_clean += 1
    cases = tuple(
        Case(
            id=f"{prefix}-{variant.kind}-{n:02d}",
            path=variant.path,
            before=variant.before,
            after=variant.after,
            label=Label(
                variant.kind, variant.line if variant.kind == "bug" else None, variant.note
            ),
            project=project,
        )
        for n, variant in enumerate(kept, 1)
    )
    return Built(cases, tried, survived, failed_clean, out_of_time)


def _shuffled(rng: random.Random, variants: Iterable[Variant]) -> list[Variant]:
    listed = list(variants)
    rng.shuffle(listed)
    return listed


def _interleaved(groups: Iterable[Iterable[Variant]]) -> Iterator[Variant]:
    """One module's edits after another's in turn, so a cap still spans modules."""
    iterators = [iter(group) for group in groups]
    while iterators:
        for iterator in list(iterators):
            variant = next(iterator, None)
            if variant is None:
                iterators.remove(iterator)
            else:
                yield variant


@attrs.frozen
class _Tests:
    work: Path
    tests: Sequence[str]
    timeout_s: float
    plugins: bool

    def run(self) -> int:
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
        env = {
            **os.environ,
            # the copy, not an installed copy of the package, and never a stale .pyc: a mutant
            # is often the same size as the original, written within the same second
            "PYTHONPATH": os.pathsep.join([str(self.work), os.environ.get("PYTHONPATH", "")]),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if not self.plugins:
            env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        try:
            return subprocess.run(
                [*command, *self.tests],
                cwd=self.work,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=self.timeout_s,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            return -1

    def run_with(self, path: str, text: str) -> int:
        file = self.work / path
        original = file.read_bytes()
        file.write_text(text, encoding="utf-8")
        try:
            return self.run()
        finally:
            file.write_bytes(original)
