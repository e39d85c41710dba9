"""`gantry eval testgen --modules PATH...`: test generation on each module in turn, scored:
the funnel's counts, line+branch coverage (by the suite, with the kept tests, by the kept tests
alone), time against the budget, tokens. A table, or --json. bench/testgen_devset.py builds the
dev set (docstring_parser). The engine is lsp_server/testgen/evaluate.py.

Exit codes: 0 every module ran; 2 usage error; 3 some module could not be run (the others are
reported)."""

from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_USAGE, EXIT_INCOMPLETE = 0, 2, 3


def add_parser(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "testgen",
        help="generate tests for modules; report funnel counts, coverage, time, tokens",
        description="Run test generation on each module (nothing is written) and report, per "
        "module, the funnel's counts, the line+branch coverage of the target by the existing "
        "suite, with the kept tests, and by the kept tests alone, the time against the budget "
        "and the tokens the model spent.",
    )
    parser.add_argument("--modules", nargs="+", required=True, metavar="PATH")
    parser.add_argument(
        "--engines", choices=("local", "model", "all"), default="local", help="default: local"
    )
    parser.add_argument(
        "--budget", type=float, default=60.0, metavar="SECONDS", help="per module (default 60)"
    )
    parser.add_argument("--reruns", type=int, default=5, choices=range(1, 21), metavar="N")
    parser.add_argument("--json", action="store_true", help="print JSON, not a table")


def run(args) -> int:
    import json
    from pathlib import Path

    from lsp_server.config import load_settings
    from lsp_server.testgen import evaluate
    from lsp_server.testgen.candidates import ENGINES
    from lsp_server.testgen.jobs import local_runner
    from lsp_server.testgen.model_access import from_settings
    from remote_exec.sandbox import SandboxUnavailable

    if args.budget <= 0:
        print("gantry: error: --budget must be above 0", file=sys.stderr)
        return EXIT_USAGE
    missing = [m for m in args.modules if not Path(m).is_file()]
    if missing:
        print(f"gantry: error: no such file: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    settings = load_settings(Path(args.modules[0]).resolve().parent).settings

    def progress(message: str) -> None:
        print(f"gantry: {message}", file=sys.stderr)

    try:
        scores = evaluate.evaluate(
            args.modules,
            local_runner(unsandboxed=settings.execution.unsandboxed),
            budget_s=args.budget,
            engines=() if args.engines == "model" else ENGINES,
            model=None if args.engines == "local" else from_settings(settings),
            reruns=args.reruns,
            progress=progress,
        )
    except SandboxUnavailable as exc:
        print(f"gantry: nothing ran: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(evaluate.as_json(scores), indent=2))
    else:
        title = f"gantry eval testgen: engines {args.engines}, {args.budget:g} s a module"
        sys.stdout.write(evaluate.table(scores, title))
    return EXIT_INCOMPLETE if any(s.error for s in scores) else EXIT_OK
