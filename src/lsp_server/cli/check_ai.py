"""`gantry check --ai`'s flags. What they make of the server's settings is
lsp_server/headless/ai_options.py (imported when a check runs, not to parse its arguments)."""

from __future__ import annotations

import argparse


class AiArgs(argparse.Namespace):
    ai: bool
    endpoint: str | None
    model: str | None
    api_key_env: str | None
    cassette: str | None
    record: bool
    replay: bool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "AI review",
        "Review with a model too (findings with source gantry-ai). Without --endpoint, the "
        "endpoints of your configuration (and of a trusted workspace) are used, or in a "
        "replay the cassette's. Answers are cached in the workspace's store: unchanged code "
        "is never sent twice.",
    )
    group.add_argument("--ai", action="store_true", help="also review with a model")
    group.add_argument(
        "--endpoint", metavar="URL", help="a Messages-API server to use instead (with --model)"
    )
    group.add_argument("--model", metavar="NAME", help="the model --endpoint serves")
    group.add_argument(
        "--api-key-env", metavar="VAR", help="the environment variable holding --endpoint's key"
    )
    group.add_argument(
        "--cassette", metavar="DIR", help="record model answers to, or replay them from, DIR"
    )
    mode = group.add_mutually_exclusive_group()
    mode.add_argument("--record", action="store_true", help="ask the model, and record to DIR")
    mode.add_argument(
        "--replay", action="store_true", help="answer from DIR only: never touch the network"
    )
