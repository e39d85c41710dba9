"""Review units of the generated 2,000-line module (bench/workload.py) and of a large stdlib
module: median time to split, from text and from a tree the caller already has, and the parse
alone for scale. Prints a markdown table (bench/table.py).

    PYTHONPATH=src python bench/bench_units.py [--runs N]
"""

from __future__ import annotations

import argparse
import inspect
import sys
import typing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from table import markdown, median_ms, row
from workload import generate

from lsp_server.analysis.languages import parser
from lsp_server.review.ai.units import split_units

TARGET_MS = 50.0


def _rows(label: str, data: bytes, runs: int) -> list[dict]:
    tree = parser("python").parse(data)
    units = split_units("python", data, tree)
    lines = data.count(b"\n")
    from_text = median_ms(lambda: split_units("python", data), runs)
    from_tree = median_ms(lambda: split_units("python", data, tree), runs)
    parse = median_ms(lambda: parser("python").parse(data), runs)
    note = f"{lines} lines, {len(units)} units"
    return [
        row(
            "units",
            label,
            "split from text (ms, p50)",
            f"{from_text:.1f}",
            f"<= {TARGET_MS:.0f}",
            from_text <= TARGET_MS,
            note,
        ),
        row(
            "units",
            label,
            "split with the caller's tree (ms, p50)",
            f"{from_tree:.1f}",
            f"<= {TARGET_MS:.0f}",
            from_tree <= TARGET_MS,
            note,
        ),
        row("units", label, "tree-sitter parse alone (ms, p50)", f"{parse:.1f}", "", None, note),
    ]


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--runs", type=int, default=30)
    args = options.parse_args()
    lines, _ = generate(2000)
    workload = "".join(lines).encode()
    stdlib = Path(inspect.getfile(typing)).read_bytes()
    split_units("python", workload)  # compile the queries outside the timings
    rows = _rows("bench/workload.py (generated)", workload, args.runs)
    rows += _rows("stdlib typing.py", stdlib, args.runs)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
