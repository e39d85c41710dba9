"""What `gantry check --ai`'s flags (cli/check_ai.py) make of the server's settings.

The command line is the user's own, like their config file: it may name an endpoint, a key's
environment variable and a cassette. They reach the server as initializationOptions (an editor's
settings layer), never through the workspace's files, which may not choose where code goes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from lsp_server.cli.check_ai import AiArgs
    from lsp_server.config import Settings
    from remote_exec.settings import Endpoint

COMMAND_LINE = "command-line"
"""The name of the endpoint --endpoint gives (what provenance shows)."""
NO_MODEL = (
    "--ai needs a model: give --endpoint URL --model NAME, configure inference.endpoints in "
    "your config (or in a workspace you trust), or replay a cassette (--cassette DIR --replay)"
)


@attrs.frozen
class AiRun:
    options: dict[str, Any]
    """The server's initializationOptions for this run."""
    hermetic: bool
    """A cassette run: it gets a store and a queue of its own (see check._analyse)."""


def ai_run(args: AiArgs, settings: Settings) -> AiRun | None:
    """What `args` ask of the server; None without --ai. ValueError says what is wrong."""
    _check_combination(args)
    if not args.ai:
        return None
    inference: dict[str, Any] = {}
    endpoints: tuple[Endpoint, ...] = ()
    if args.endpoint:
        endpoint = _command_line_endpoint(args)
        endpoints = (endpoint,)
        if endpoint.privacy == "cloud":
            inference["privacy"] = "any"  # naming it on the command line is the user's choice
    elif args.replay:  # asks what the recording asked: its chain, not this machine's
        endpoints = _recorded_endpoints(Path(args.cassette))
    elif settings.inference.endpoints:
        pass  # the server reads the same configuration
    else:
        raise ValueError(NO_MODEL if not args.record else "--record needs an endpoint: " + NO_MODEL)
    if endpoints:
        inference["endpoints"] = [attrs.asdict(endpoint) for endpoint in endpoints]
    if args.cassette:
        folder = Path(args.cassette).resolve()
        if args.replay:
            _recorded_endpoints(folder)  # a replay of no cassette is a mistake, say it now
        else:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ValueError(f"--cassette {args.cassette}: {exc.strerror}") from None
        mode = "replay" if args.replay else "record"
        inference["cassette"] = {"path": str(folder), "mode": mode}
    return AiRun({"inference": inference}, hermetic=bool(args.cassette))


def _check_combination(args: AiArgs) -> None:
    given = [
        flag
        for flag, value in (
            ("--endpoint", args.endpoint),
            ("--model", args.model),
            ("--api-key-env", args.api_key_env),
            ("--cassette", args.cassette),
            ("--record", args.record),
            ("--replay", args.replay),
        )
        if value
    ]
    if given and not args.ai:
        raise ValueError(f"{', '.join(given)} only go with --ai")
    if bool(args.endpoint) != bool(args.model):
        raise ValueError("--endpoint and --model go together")
    if args.api_key_env and not args.endpoint:
        raise ValueError("--api-key-env names --endpoint's key; give --endpoint too")
    if args.cassette and not (args.record or args.replay):
        raise ValueError("--cassette needs --record or --replay")
    if (args.record or args.replay) and not args.cassette:
        raise ValueError("--record and --replay need --cassette DIR")


def _command_line_endpoint(args: AiArgs) -> Endpoint:
    import urllib.parse

    from remote_exec.settings import Endpoint

    host = urllib.parse.urlsplit(args.endpoint).hostname or ""
    cloud = host == "anthropic.com" or host.endswith(".anthropic.com")
    if cloud and not args.api_key_env:
        raise ValueError("--endpoint is Anthropic's API: name its key with --api-key-env VAR")
    try:
        return Endpoint(
            name=COMMAND_LINE,
            base_url=args.endpoint,
            model=args.model,
            api_key_env=args.api_key_env,
            privacy="cloud" if cloud else "self-hosted",
        )
    except ValueError as exc:  # its own words: they never repeat a URL's password
        raise ValueError(f"--endpoint: {exc}") from None


def _recorded_endpoints(folder: Path) -> tuple[Endpoint, ...]:
    from remote_exec.inference.cassette import replay_endpoints

    endpoints = replay_endpoints(folder)  # CassetteError is a ValueError
    if not endpoints:
        raise ValueError(f"the cassette {folder} names no endpoint; record it again")
    return endpoints
