"""The local cost of validating one AI fix before it is offered; prints a markdown table.

    python bench/ai_fix_validation.py [--runs 20]

Each row is the median of --runs calls of `validate_fix` on the generated 2,000-line module
(bench/workload.py; a function of it as the unit), for a good fix and for fixes refused at each
check, beside the parts that dominate (ruff on the document, a tree-sitter parse, compile()).
Real ruff and tree-sitter, nothing cached between runs but ruff's own process start-up.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from table import markdown, median_ms, row
from workload import generate

from lsp_server.analysis.languages import parser
from lsp_server.config import Settings
from lsp_server.review.ai.answer import SuggestedFix
from lsp_server.review.ai.validate import FixRefused, ruff_errors, validate_fix
from lsp_server.review.findings import Snapshot

SECTION = "AI fix validation"


def main(argv: list[str] | None = None) -> int:
    parser_ = argparse.ArgumentParser(description=__doc__)
    parser_.add_argument("--runs", type=int, default=20)
    args = parser_.parse_args(argv)

    lines, _ = generate(2000)
    text = "".join(lines)
    first = lines.index(next(line for line in lines if line.startswith("def report_5_0(")))
    last = next(i for i in range(first, len(lines)) if lines[i] == "    return result\n")
    flagged = (first + 2, first + 3)  # `total = 0` and `seen = set()`
    unit_text = "".join(lines[first : last + 1])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "module.py"
        big = Snapshot(path.as_uri(), str(path), 1, text, "python", Settings())
        small = Snapshot(path.as_uri(), str(path), 1, unit_text, "python", Settings())
        js_text = "function mean(xs) {\n  return xs.reduce((a, b) => a + b) / xs.length;\n}\n"
        js = Snapshot("file:///m.js", "/m.js", 1, js_text, "javascript", Settings())

        good = SuggestedFix("    seen = set()\n", "    seen: set[int] = set()\n")
        cases = [
            ("good fix, 2,000-line document", big, good, flagged, (first, last), {}),
            (
                "good fix, ruff baseline given (several fixes, one document)",
                big,
                good,
                flagged,
                (first, last),
                {"errors_before": ruff_errors(big, root)},
            ),
            (
                "good fix, unit-sized document (16 lines)",
                small,
                good,
                (2, 3),
                (0, last - first),
                {},
            ),
            (
                "refused: search text not in unit",
                big,
                SuggestedFix("    seen = frozenset()\n", "x"),
                flagged,
                (first, last),
                {},
            ),
            (
                "refused: does not touch flagged lines",
                big,
                SuggestedFix("        total += value\n", "        total += int(value)\n"),
                flagged,
                (first, last),
                {},
            ),
            (
                "refused: syntax error (tree-sitter)",
                big,
                SuggestedFix("    seen = set()\n", "    seen = set(\n"),
                flagged,
                (first, last),
                {},
            ),
            (
                "refused: new undefined name (ruff F821)",
                big,
                SuggestedFix("    seen = set()\n", "    seen = set(initial)\n"),
                flagged,
                (first, last),
                {},
            ),
            (
                "good fix, JavaScript (tree-sitter only)",
                js,
                SuggestedFix("a + b)", "a + b, 0)"),
                (1, 1),
                (0, 2),
                {},
            ),
        ]
        rows = []
        for name, snap, fix, lines_, span, extra in cases:
            verdict = validate_fix(fix, snap, lines_, span, root=root, **extra)
            outcome = (
                f"refused at {verdict.check}"
                if isinstance(verdict, FixRefused)
                else "valid: " + ",".join(verdict.checks)
            )
            ms = median_ms(
                lambda: validate_fix(fix, snap, lines_, span, root=root, **extra),  # noqa: B023
                args.runs,
            )
            rows.append(
                row(SECTION, name, f"ms per fix (median of {args.runs})", f"{ms:.1f}", note=outcome)
            )
        source = text.encode()
        parts = [
            ("ruff F,E9 on the document (one run)", lambda: ruff_errors(big, root)),
            ("tree-sitter parse of the document", lambda: parser("python").parse(source)),
            ("compile() of the document", lambda: compile(text, "m.py", "exec", dont_inherit=True)),
        ]
        for name, fn in parts:
            ms = median_ms(fn, args.runs)
            rows.append(row(SECTION, name, f"ms (median of {args.runs})", f"{ms:.1f}", note="part"))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
