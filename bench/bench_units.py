"""The local part of an AI review pass on the generated 2,000-line module (bench/workload.py),
indexed in a real store: splitting into units (from text, and from a tree the caller already
has), context packs for every unit, their cache keys and one cache look-up, on the first pass
and again after a one-line change (rankings are memoised). Medians; a markdown table.

    PYTHONPATH=src python bench/bench_units.py [--runs N]
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
import typing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from table import markdown, median_ms, row
from workload import generate

from lsp_server.analysis.indexer import Indexer
from lsp_server.analysis.languages import parser
from lsp_server.config import Settings
from lsp_server.review.ai import context
from lsp_server.review.ai.cache import cache_key
from lsp_server.review.ai.context import build_pack, neighbourhoods
from lsp_server.review.ai.units import split_units
from lsp_server.store import Store

TARGET_MS = 50.0


def _split_rows(label: str, data: bytes, runs: int) -> list[dict]:
    tree = parser("python").parse(data)
    units = split_units("python", data, tree)
    note = f"{len(data.splitlines())} lines, {len(units)} units"
    from_text = median_ms(lambda: split_units("python", data), runs)
    from_tree = median_ms(lambda: split_units("python", data, tree), runs)
    parse = median_ms(lambda: parser("python").parse(data), runs)
    return [
        row("units", label, "split from text (ms, p50)", f"{from_text:.1f}", "", None, note),
        row(
            "units",
            label,
            "split with the caller's tree (ms, p50)",
            f"{from_tree:.1f}",
            "",
            None,
            note,
        ),
        row("units", label, "tree-sitter parse alone (ms, p50)", f"{parse:.1f}", "", None, note),
    ]


def _pass(store: Store, text: str, budget: int) -> dict[str, float]:
    """One pass: units, packs, keys, look-up; milliseconds per step."""
    times: dict[str, float] = {}
    start = time.perf_counter()
    units = split_units("python", text)
    times["units"] = time.perf_counter()
    around = neighbourhoods(store, units)
    times["store reads"] = time.perf_counter()
    packs = [build_pack(u, "mod.py", n, budget=budget) for u, n in zip(units, around, strict=True)]
    times["packs"] = time.perf_counter()
    keys = [cache_key(u, p, "v1", "model") for u, p in zip(units, packs, strict=True)]
    store.ai_cached_many(keys)
    times["keys + cache look-up"] = time.perf_counter()
    steps, last = {}, start
    for step, at in times.items():
        steps[step] = (at - last) * 1000
        last = at
    steps["whole pass"] = (last - start) * 1000
    return steps


def _pass_rows(runs: int) -> list[dict]:
    lines, _ = generate(2000)
    text = "".join(lines)
    edited = text.replace("RETRIES = 3", "RETRIES = 4", 1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        (root / "mod.py").write_text(text)
        with Store.open(Path(tmp) / "store.db") as store:
            Indexer(store, root, Settings()).index_all()
            for budget in (context.DEFAULT_BUDGET, 150):
                label = f"budget {budget} tokens"
                cold = []
                warm = []
                for _ in range(runs):
                    context._ranked.cache_clear()
                    cold.append(_pass(store, text, budget))
                    warm.append(_pass(store, edited, budget))
                for name, passes in (("first pass", cold), ("after a one-line change", warm)):
                    for step in passes[0]:
                        value = sorted(p[step] for p in passes)[len(passes) // 2]
                        whole = step == "whole pass"
                        rows.append(
                            row(
                                "AI pass (local)",
                                f"{label}, {name}",
                                f"{step} (ms, p50)",
                                f"{value:.1f}",
                                f"<= {TARGET_MS:.0f}" if whole else "",
                                value <= TARGET_MS if whole else None,
                                "ranking runs only where the budget must cut" if whole else "",
                            )
                        )
    return rows


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--runs", type=int, default=15)
    args = options.parse_args()
    lines, _ = generate(2000)
    workload = "".join(lines).encode()
    split_units("python", workload)  # compile the queries outside the timings
    rows = _split_rows("bench/workload.py (generated)", workload, args.runs)
    rows += _split_rows("stdlib typing.py", Path(inspect.getfile(typing)).read_bytes(), args.runs)
    rows += _pass_rows(args.runs)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
