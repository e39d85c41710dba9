"""`gantry eval review DATASET`: how well AI review finds seeded bugs and keeps quiet on clean
changes, with a model at an endpoint or with answers recorded before. The dataset format is in
docs/eval.md; bench/eval_dataset.py builds the dev dataset. The engine is
lsp_server/review/ai/eval/. `gantry eval testgen --modules ...`: see eval_testgen.py.

Exit codes:
  0  every case was scored
  2  usage error: flags, an unreadable dataset or answers file, a key's variable not set
  3  some cases were not scored (a unit got no answer); the metrics cover the others
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lsp_server.cli import eval_testgen

NAME = "eval"
EXIT_OK, EXIT_USAGE, EXIT_INCOMPLETE = 0, 2, 3

_EXIT_CODES = """exit codes:
  0  every case was scored
  2  usage error (flags, an unreadable dataset or answers file, a key not set)
  3  some cases got no answer for a unit and were not scored (the rest are reported)"""


class Args(argparse.Namespace):
    what: str
    dataset: str
    endpoint: str | None
    model: str | None
    api_key_env: str | None
    answers: str | None
    save_answers: str | None
    json: bool
    parallel: int
    modules: list[str]
    engines: str
    budget: float
    reruns: int


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME, help="measure the quality of AI review or test generation on a dataset"
    )
    kinds = parser.add_subparsers(dest="what", required=True, metavar="WHAT")
    review = kinds.add_parser(
        "review",
        help="review seeded bugs and clean changes; report recall, precision, noise, tokens",
        description="Review each case's changed units through the AI review engine and score "
        "the findings: recall (a finding within 3 lines of the seeded bug), precision, false "
        "positives per 100 changed lines, units left silent, fixes that pass validation, tokens.",
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    review.add_argument("dataset", metavar="DATASET", help="the cases, JSON lines")
    review.add_argument("--endpoint", metavar="URL", help="a Messages-API server (without /v1)")
    review.add_argument("--model", metavar="NAME", help="the model to ask there")
    review.add_argument(
        "--api-key-env", metavar="VAR", help="the environment variable holding its key"
    )
    review.add_argument(
        "--answers", metavar="FILE", help="answers recorded before (JSON lines), not a model"
    )
    review.add_argument(
        "--save-answers", metavar="FILE", help="with --endpoint: record the answers to FILE"
    )
    review.add_argument("--json", action="store_true", help="print JSON, not a table")
    review.add_argument(
        "--parallel",
        type=int,
        default=4,
        metavar="N",
        help="units asked at once (default: 4)",
    )
    eval_testgen.add_parser(kinds)


class UsageError(Exception):
    pass


def _error(message: str) -> None:
    print(f"gantry: error: {message}", file=sys.stderr)


def run(args: Args) -> int:
    from lsp_server.cli._interrupt import ctrl_c_leaves_at_once

    with ctrl_c_leaves_at_once():
        return eval_testgen.run(args) if args.what == "testgen" else _review(args)


def _source(args: Args):
    """What answers the units; UsageError for flags that do not fit together."""
    import os

    from lsp_server.review.ai.eval import sources

    if bool(args.endpoint) == bool(args.answers):
        raise UsageError("give either --endpoint URL --model NAME, or --answers FILE")
    if args.answers:
        extra = [flag for flag, value in _live_flags(args) if value]
        if extra:
            raise UsageError(f"{', '.join(extra)} go with --endpoint, not --answers")
        try:
            return sources.AnswersFile.load(Path(args.answers))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if not args.model:
        raise UsageError("--endpoint needs --model NAME")
    if args.api_key_env and not os.environ.get(args.api_key_env):
        raise UsageError(f"--api-key-env {args.api_key_env}: the variable is not set")
    endpoint, policy = _endpoint(args)
    source = sources.Live(endpoint, policy)
    if args.save_answers:
        target = Path(args.save_answers)
        try:
            target.write_text("", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--save-answers {args.save_answers}: {exc.strerror}") from None
        return sources.Recorder(source, target)
    return source


def _live_flags(args: Args) -> list[tuple[str, object]]:
    return [
        ("--model", args.model),
        ("--api-key-env", args.api_key_env),
        ("--save-answers", args.save_answers),
    ]


def _endpoint(args: Args):
    """The endpoint the flags name. Naming it on the command line is the user's own choice, as
    in their config: a cloud endpoint (Anthropic's API) is allowed, and needs its key."""
    import urllib.parse

    from remote_exec.settings import Endpoint, OutboundPolicy

    host = urllib.parse.urlsplit(args.endpoint).hostname or ""
    cloud = host == "anthropic.com" or host.endswith(".anthropic.com")
    if cloud and not args.api_key_env:
        raise UsageError("--endpoint is Anthropic's API: name its key with --api-key-env VAR")
    try:
        endpoint = Endpoint(
            name="command-line",
            base_url=args.endpoint,
            model=args.model,
            api_key_env=args.api_key_env,
            privacy="cloud" if cloud else "self-hosted",
        )
    except ValueError as exc:  # its own words never repeat a URL's password
        raise UsageError(f"--endpoint: {exc}") from None
    return endpoint, OutboundPolicy(privacy="any" if cloud else "self-hosted-only")


def _review(args: Args) -> int:
    import json

    from lsp_server.review.ai.eval import dataset, report, runner, score

    try:
        if args.parallel < 1:
            raise UsageError(f"--parallel must be at least 1, got {args.parallel}")
        source = _source(args)
        try:
            cases = dataset.load(Path(args.dataset))
        except dataset.DatasetError as exc:
            raise UsageError(str(exc)) from None
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE

    def progress(message: str) -> None:
        print(f"gantry: {message}", file=sys.stderr)

    model = args.model or "answers-file"
    outcomes = runner.evaluate(
        cases, source, model=model, parallel=args.parallel, progress=progress
    )
    metrics = score.summarise(outcomes)
    if args.json:
        print(json.dumps(report.as_json(metrics, outcomes, source.describe), indent=2))
    else:
        title = f"gantry eval review: {args.dataset}, {source.describe}"
        sys.stdout.write(report.table(metrics, title))
    missed = [o for o in outcomes if not o.scored]
    for outcome in missed:
        print(f"gantry: not scored: {outcome.id}: {'; '.join(outcome.unanswered)}", file=sys.stderr)
    return EXIT_INCOMPLETE if missed else EXIT_OK
