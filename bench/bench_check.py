"""`gantry check` beside `ruff check` on real trees, same rules, in one run; prints a markdown
table.

    python bench/bench_check.py [--runs 3] [--select E,F,W,B] [--gantry-src DIR]
        [--baseline-src DIR] [--output FILE]

Trees, copied to a temp dir: (a) the standard library's .py files (no site-packages), (b) the
installed rich and pygments packages, side by side in one tree. Each copy gets a pyproject.toml
selecting the same rules for both tools. Each tool runs with its default output (text) and with
JSON, where Gantry's findings carry fingerprints (the scopes of every file with
findings; the text report has none to show, so they are not computed there). Every run starts
without ruff's cache (`.ruff_cache` removed), runs alternate between the tools, and the table
shows medians. `--gantry-src` runs Gantry from another source tree; `--baseline-src` runs a
second Gantry (e.g. `git archive` of an older commit) as "gantry before", interleaved with the
others in every run, so that before and after are compared under the same load. Targets are
shown, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules

from table import markdown, row

from bench import copy_python_tree, machine

RUFF = str(Path(sysconfig.get_path("scripts")) / "ruff")
TARGETS = {"stdlib": 3.0, "rich+pygments": 8.0}
"""The most `gantry check` may take, as a multiple of `ruff check` on the same tree."""


def copy_packages(names: list[str], dst: Path) -> bool:
    """The installed packages, copied side by side without bytecode; False if one is missing."""
    import importlib.util

    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            return False
        source = Path(spec.origin).parent
        shutil.copytree(source, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
    return True


def configure(tree: Path, select: str) -> None:
    rules = ", ".join(f'"{rule}"' for rule in select.split(","))
    (tree / "pyproject.toml").write_text(f"[tool.ruff.lint]\nselect = [{rules}]\n")


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall time and CPU time (user + system, the process and every descendant it waited for:
    Gantry's server, ruff) of one run from a cold ruff cache, and its stdout. On a shared
    machine the CPU time moves less with the load than the wall time."""
    shutil.rmtree(cwd / ".ruff_cache", ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1):
        first = proc.stderr.strip().splitlines()[:1]
        raise RuntimeError(f"{Path(argv[0]).name} {argv[1:4]} exited {proc.returncode}: {first}")
    return elapsed, cpu, proc.stdout


def bench_tree(
    name: str, tree: Path, runs: int, env: dict[str, str], baseline: dict[str, str] | None
) -> list[dict]:
    """Both tools with their default output (text) and with JSON (Gantry's carries
    fingerprints); with `baseline` (another Gantry's environment), that one too, in the same
    alternation, so before and after share the machine's load."""
    gantry = [sys.executable, "-m", "lsp_server", "check", ".", "--fail-on=never", "--wait=900"]
    ruff_json = [RUFF, "check", "--output-format=json", "--exit-zero", "."]
    tools = {"ruff check": ([RUFF, "check", "--exit-zero", "."], ruff_json, env)}
    if baseline is not None:
        tools["gantry before"] = (gantry, [*gantry, "--format=json"], baseline)
    tools["gantry check"] = (gantry, [*gantry, "--format=json"], env)
    times: dict[tuple[str, str], list[float]] = {
        (tool, output): [] for tool in tools for output in ("default", "json")
    }
    cpus: dict[tuple[str, str], list[float]] = {key: [] for key in times}
    counts: dict[str, int] = {}
    for _ in range(runs):
        for output in ("default", "json"):
            for tool, (text_argv, json_argv, tool_env) in tools.items():
                argv = json_argv if output == "json" else text_argv
                elapsed, cpu, out = timed(argv, tree, tool_env)
                times[tool, output].append(elapsed)
                cpus[tool, output].append(cpu)
                if output == "json":
                    document = json.loads(out)
                    counts[tool] = len(
                        document if isinstance(document, list) else document["findings"]
                    )
    files = sum(1 for path in tree.rglob("*.py") if path.is_file())
    section, rows = f"{name} ({files:,} files)", []
    for output in ("default", "json"):
        medians = {tool: statistics.median(times[tool, output]) for tool in tools}
        for tool, median in medians.items():
            rows.append(
                row(
                    section,
                    tool,
                    f"wall time, {output} output",
                    f"{median:.2f} s",
                    note=f"{note(times[tool, output])}; CPU (user+sys, all processes) median "
                    f"{statistics.median(cpus[tool, output]):.2f} s",
                )
            )
        for tool in tools:
            if tool == "ruff check":
                continue
            ratio, target = medians[tool] / medians["ruff check"], TARGETS[name]
            rows.append(
                row(
                    section,
                    f"{tool} / ruff",
                    f"ratio, {output} output",
                    f"{ratio:.1f}x",
                    f"<= {target:g}x" if tool == "gantry check" else "",
                    ratio <= target if tool == "gantry check" else None,
                    note="ratio of medians; per run: "
                    + ", ".join(
                        f"{g / r:.1f}x"
                        for g, r in zip(times[tool, output], times["ruff check", output])
                    )
                    + "; CPU time: "
                    + f"{statistics.median(cpus[tool, output]) / statistics.median(cpus['ruff check', output]):.1f}x",
                )
            )
    found = ", ".join(f"{tool} {count:,}" for tool, count in counts.items())
    same = "the same" if len(set(counts.values())) == 1 else "DIFFERENT"
    rows[-1]["note"] += f"; findings (json): {found} ({same})"
    return rows


def note(values: list[float]) -> str:
    return f"n={len(values)}, min {min(values):.2f} s, max {max(values):.2f} s; cold ruff cache"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per tool and tree")
    parser.add_argument("--select", default="E,F,W,B", help="the ruff rules both tools run")
    parser.add_argument("--stdlib", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--trees", default="stdlib,rich+pygments")
    parser.add_argument("--gantry-src", type=Path, help="run Gantry from this source tree")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="also run the Gantry of this source tree (e.g. a worktree of an older commit), "
        "as 'gantry before', alternating with the others",
    )
    parser.add_argument("--output", type=Path, help="also write the markdown here")
    args = parser.parse_args()

    started, rows = time.perf_counter(), []
    with tempfile.TemporaryDirectory(prefix="gantry-bench-check-") as tmpdir:
        tmp = Path(tmpdir)
        env = dict(os.environ)
        for variable in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
            env[variable] = str(tmp / variable.lower())
        if args.gantry_src:
            env["PYTHONPATH"] = str(args.gantry_src.resolve())
        baseline = None
        if args.baseline_src:
            baseline = {**env, "PYTHONPATH": str(args.baseline_src.resolve())}
        for name in args.trees.split(","):
            tree = tmp / name
            if name == "stdlib":
                copy_python_tree(args.stdlib, tree)
            elif not copy_packages(name.split("+"), tree):
                rows.append(row(name, "(tree)", "", "skipped: not installed"))
                continue
            configure(tree, args.select)
            print(f"{name}...", file=sys.stderr, flush=True)
            try:
                rows.extend(bench_tree(name, tree, args.runs, env, baseline))
            except RuntimeError as exc:  # a tool that fails is a row too
                rows.append(row(name, "(tree)", "", "failed", note=str(exc)[:300]))
    source = args.gantry_src or Path(__file__).resolve().parent.parent / "src"
    before = f"; before: Gantry from {args.baseline_src}" if args.baseline_src else ""
    text = (
        f"Machine: {machine()}\n\nRules: {args.select}; Gantry from {source}{before}\n\n"
        f"{markdown(rows)}\n\nBenchmark wall time: {time.perf_counter() - started:.0f} s\n"
    )
    print(text)
    if args.output:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
