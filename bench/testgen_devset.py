"""Build test generation's dev set from docstring_parser and score `gantry eval testgen` on it.

docstring_parser (the module set Pynguin reports 61-65% line+branch coverage on in 60 s) is
fetched with `pip download` at run time into a temporary directory (never needed by the test
suite), laid out as a project without its tests (a pyproject.toml, the package, an empty
tests/ folder), and each module is run through test generation, local engines by default:

    python bench/testgen_devset.py [--budget 60] [--engines local] [--modules google numpydoc]
        [--json OUT.json] [--keep DIR]

The issue's targets: median line+branch coverage of the target module by kept tests >= 60%,
and no run over its budget by more than 10%.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "docstring_parser"
VERSION = "0.18.0"
MODULES = ("google", "numpydoc", "rest", "epydoc", "common", "parser", "attrdoc", "util")


def fetch(into: Path, version: str) -> Path:
    """The wheel, by pip (whatever index pip is configured with)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        + ["--dest", str(into), f"{PACKAGE}=={version}" if version else PACKAGE],
        check=True,
        stdout=sys.stderr,
    )
    return next(into.glob(f"{PACKAGE}-*.whl"))


def build(wheel: Path, root: Path) -> Path:
    """A project holding the package without its tests; returns its root."""
    root.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith(f"{PACKAGE}/") and "/tests/" not in name and name.endswith(".py"):
                target = root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(name))
    (root / "tests").mkdir(exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{PACKAGE}-devset"\nversion = "0"\n\n'
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
    )
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds a module")
    parser.add_argument("--engines", default="local", choices=("local", "model", "all"))
    parser.add_argument("--modules", nargs="*", default=list(MODULES))
    parser.add_argument("--version", default=VERSION, help="of docstring_parser ('' = latest)")
    parser.add_argument("--json", type=Path, help="write the eval's JSON here too")
    parser.add_argument("--keep", type=Path, help="build the project here and leave it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gantry-devset-") as tmp:
        wheel = fetch(Path(tmp) / "download", args.version)
        root = build(wheel, args.keep or Path(tmp) / "project")
        modules = [f"{PACKAGE}/{m}.py" for m in args.modules]
        print(f"dev set: {wheel.name} -> {root}", file=sys.stderr)
        done = subprocess.run(
            [sys.executable, "-m", "lsp_server.cli", "eval", "testgen", "--json"]
            + ["--modules", *modules, "--budget", str(args.budget), "--engines", args.engines],
            cwd=root,
            capture_output=True,
            text=True,
            env=os.environ,
            check=False,
        )
        sys.stderr.write(done.stderr)
        if done.returncode not in (0, 3):
            return done.returncode
        result = json.loads(done.stdout)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    for m in result["modules"]:
        kept = (m["coverage_kept"] or {}).get("percent")
        counts = " ".join(f"{k}={v}" for k, v in m["stages"].items())
        print(f"{m['module']:32} kept {kept}%  {counts}  {m['seconds']}/{m['budget_s']} s")
    summary = result["summary"]
    print(
        f"median line+branch coverage of kept tests: {summary['median_kept_coverage']}% "
        f"(target >= 60%); largest overrun {100 * summary['max_overrun']:.1f}% "
        f"(over by >10%: {summary['over_budget'] or 'none'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
