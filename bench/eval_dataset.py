"""Build the dev dataset of `gantry eval review` from docstring_parser: mutants its own tests
kill (seeded bugs) and edits its tests still pass (clean changes), each a one-hunk change of
one module, with the package as the cases' project snapshot (docs/eval.md).

    PYTHONPATH=src python bench/eval_dataset.py [--out bench/eval-data] [--bugs 20] [--clean 20]
    gantry eval review bench/eval-data/cases.jsonl --endpoint URL --model NAME

The source is the pinned sdist (the wheel has no tests), fetched with `pip download` into a
temporary folder. Without the package index: `--source DIR`, an unpacked sdist or checkout of
the same version; the installed copy is used only if it carries its tests (wheels do not).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from lsp_server.review.ai.eval.build import BuildError, Options, build
from lsp_server.review.ai.eval.dataset import dump

PACKAGE = "docstring_parser"
VERSION = "0.18.0"
TESTS = f"{PACKAGE}/tests"


def _download(into: Path) -> Path | None:
    """The unpacked sdist, or None when pip cannot get it."""
    command = [sys.executable, "-m", "pip", "download", f"{PACKAGE}=={VERSION}", "--no-deps"]
    command += ["--no-binary", ":all:", "--quiet", "-d", str(into)]
    if subprocess.run(command, check=False).returncode != 0:
        return None
    archives = sorted(into.glob("*.tar.gz"))
    if not archives:
        return None
    with tarfile.open(archives[0]) as archive:
        archive.extractall(into, filter="data")
    unpacked = [p for p in into.iterdir() if p.is_dir() and (p / PACKAGE).is_dir()]
    return unpacked[0] if unpacked else None


def _installed() -> Path | None:
    """The installed copy's project folder, if it is the pinned version and has its tests."""
    try:
        if importlib.metadata.version(PACKAGE) != VERSION:
            return None
        module = importlib.import_module(PACKAGE)
    except (importlib.metadata.PackageNotFoundError, ImportError):
        return None
    root = Path(module.__file__).parent.parent
    return root if (root / TESTS).is_dir() else None


def _project(source: Path | None, scratch: Path) -> Path:
    if source is not None:
        if not (source / TESTS).is_dir():
            raise SystemExit(f"--source {source}: no {TESTS} there (an sdist or checkout?)")
        return source
    found = _download(scratch / "download") or _installed()
    if found is None:
        raise SystemExit(
            f"cannot get {PACKAGE}=={VERSION} with its tests: pip download failed and the "
            "installed copy has none (a wheel). Give --source DIR, an unpacked sdist."
        )
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/eval-data"), metavar="DIR")
    parser.add_argument("--source", type=Path, metavar="DIR", help="an unpacked sdist")
    parser.add_argument("--bugs", type=int, default=20, help="at most this many (default 20)")
    parser.add_argument("--clean", type=int, default=20, help="at most this many (default 20)")
    parser.add_argument("--budget", type=float, default=600.0, metavar="SECONDS")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gantry-eval-source-") as scratch:
        found = _project(args.source, Path(scratch))
        # The snapshot the cases name: the package and its tests, nothing of the sdist's
        # packaging; written beside the dataset so that the dataset folder is self-contained.
        project = args.out / f"{PACKAGE}-{VERSION}"
        if project.exists():
            shutil.rmtree(project)
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copytree(
            found / PACKAGE, project / PACKAGE, ignore=shutil.ignore_patterns("__pycache__")
        )
    sources = sorted(
        p.relative_to(project).as_posix()
        for p in (project / PACKAGE).glob("*.py")
        if p.name != "__init__.py"
    )
    options = Options(
        max_bugs=args.bugs, max_clean=args.clean, budget_s=args.budget, seed=args.seed
    )
    try:
        built = build(
            project,
            sources,
            [TESTS],
            options,
            prefix=PACKAGE.replace("_", "-"),
            progress=lambda message: print(message, file=sys.stderr),
        )
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    dataset = args.out / "cases.jsonl"
    dump(built.cases, dataset)
    bugs = sum(c.label.kind == "bug" for c in built.cases)
    print(
        f"{dataset}: {bugs} seeded bugs, {len(built.cases) - bugs} clean changes "
        f"({built.tried} variants tried: {built.survived} mutants survived the tests, "
        f"{built.failed_clean} clean edits failed them"
        + (", time budget spent" if built.out_of_time else "")
        + ")"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
