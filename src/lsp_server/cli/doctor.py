"""`gantry doctor`: one line per check, ok, warn or fail, with a hint for each problem. Only
failures make it exit 1: a warning is something nothing configured runs into."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing to parse arguments
if TYPE_CHECKING:
    from lsp_server.config import Settings
    from remote_exec.settings import GatewayTarget

NAME = "doctor"


class Args(argparse.Namespace):
    workspace: str


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(NAME, help="check endpoints, gateway, sandbox, ruff and store")
    parser.add_argument("--workspace", default=".", metavar="PATH")


Check = tuple[str, Callable[[], str]]
"""(name, run): run returns a detail line when fine, raises DoctorFailure otherwise."""


class DoctorFailure(Exception):
    def __init__(self, detail: str, hint: str) -> None:
        super().__init__(detail)
        self.hint = hint


class DoctorWarning(DoctorFailure):
    """A problem only for what is not configured here: said, without failing the doctor."""


def _ruff(settings: Settings) -> str:
    import subprocess

    from lsp_server.review.ruff_engine import RuffUnavailable, find_ruff

    try:
        path = find_ruff(settings)
    except RuffUnavailable as exc:
        raise DoctorFailure(str(exc), "pip install ruff, or set ruff.path") from exc
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    return f"{version.stdout.strip()} ({path})"


def _store(root: Path, settings: Settings) -> str:
    from lsp_server.config import store_path
    from lsp_server.store import NewerSchemaError, NotAStoreError
    from lsp_server.store.db import diagnose

    path = store_path(root, settings)
    if not path.exists():
        return f"{path} (not created yet: it is built on first use)"
    try:
        problem = diagnose(path)
    except NotAStoreError as exc:
        raise DoctorFailure(str(exc), "point `store` at another path") from exc
    except NewerSchemaError as exc:
        raise DoctorFailure(f"{path}: {exc}", "upgrade Gantry, or point `store` elsewhere") from exc
    if problem is not None:
        raise DoctorFailure(
            f"{path}: {problem}", "the server moves it aside and rebuilds it, keeping verdicts"
        )
    return str(path)


def _sandbox(settings: Settings) -> str:
    """Only running code needs the sandbox (generated tests, the gateway's jobs while it is down);
    review and indexing never do. So a missing one fails only settings that send jobs here."""
    from remote_exec.sandbox import Sandbox

    execution = settings.execution
    if execution.unsandboxed:
        raise DoctorFailure(
            "execution.unsandboxed is set: local jobs run WITHOUT isolation",
            "remove execution.unsandboxed once bubblewrap works",
        )
    problem = Sandbox().check()
    if problem is None:
        return "bubblewrap works (no network, read-only system, private job directory)"
    hint = "apt-get install bubblewrap (and allow user namespaces)"
    if execution.gateway_targets() and execution.local_fallback:
        raise DoctorFailure(problem, f"{hint}: CPU jobs run here while no gateway has room")
    raise DoctorWarning(
        problem, f"{hint} before running code here (test generation); review never needs it"
    )


def _endpoint(endpoint) -> str:
    from remote_exec.health import tcp_probe

    if not tcp_probe(endpoint.base_url, timeout_s=endpoint.connect_timeout_s)():
        raise DoctorFailure(
            f"{endpoint.base_url} does not accept connections",
            "is the model server running, and is the URL right?",
        )
    return f"{endpoint.base_url} accepts connections ({endpoint.model}, {endpoint.privacy})"


def _gateway(target: GatewayTarget) -> str:
    """Whether the gateway takes our token, and the health and capacity it reports."""
    from remote_exec.capacity import Reported
    from remote_exec.credentials import SecretMissing
    from remote_exec.execution import ExecutionClient, GatewayRejected

    try:
        token = target.read_token()
    except SecretMissing as exc:
        raise DoctorFailure(str(exc), "set token_env or token_file to a readable token") from exc
    if not token:
        raise DoctorFailure("no token", f"export {target.token_env} or set token_file")
    client = ExecutionClient(
        target.url,
        token,
        connect_timeout_s=target.connect_timeout_s,
        read_timeout_s=target.read_timeout_s,
    )
    try:
        health = client.health()
    except GatewayRejected as exc:
        raise DoctorFailure(
            f"{target.url}: {exc}", "the token is not accepted by the gateway"
        ) from exc
    except Exception as exc:
        raise DoctorFailure(f"{target.url}: {exc}", "is `gantry gateway` running there?") from exc
    finally:
        client.close()
    try:
        report = Reported.from_health(health)
    except ValueError as exc:
        raise DoctorFailure(f"{target.url}: {exc}", "is that URL a Gantry gateway?") from exc
    labels = ", ".join(f"{k}={v}" for k, v in sorted(target.labels.items()))
    detail = (
        f"{target.url} accepts the token (backend {health.get('backend')}; "
        f"{report.free_slots}/{report.slots} slots and {report.free_gpus}/{report.gpus} GPUs free; "
        f"{health.get('running')} running, {health.get('queued')} queued"
        + (f"; labels {labels}" if labels else "")
        + ")"
    )
    if report.draining:
        raise DoctorWarning(
            f"{detail}: draining, it takes no new jobs", "remove its drain file to undrain it"
        )
    return detail


def checks(root: Path, settings: Settings) -> Iterator[Check]:
    yield "ruff", lambda: _ruff(settings)
    yield "store", lambda: _store(root, settings)
    yield "sandbox", lambda: _sandbox(settings)
    for endpoint in settings.inference.endpoints:
        yield f"endpoint {endpoint.name}", lambda e=endpoint: _endpoint(e)
    for target in settings.execution.gateway_targets():
        yield f"gateway {target.name}", lambda t=target: _gateway(t)


def run(args: Args) -> int:
    from lsp_server.config import load_settings

    root = Path(args.workspace).resolve()
    loaded = load_settings(root)
    settings, problems = loaded.settings, loaded.problems
    failed = 0
    width = 22
    if problems:
        failed += 1
        print(f"{'fail':<5} {'settings':<{width}} {len(problems)} invalid: {'; '.join(problems)}")
        print(f"{'':<5} {'':<{width}} hint: fix them in pyproject.toml / gantry.toml")
    else:
        print(f"{'ok':<5} {'settings':<{width}} valid")
    if (withheld := loaded.withheld_message()) is not None:
        print(f"{'info':<5} {'trust':<{width}} {withheld}")
    elif loaded.source is not None:
        print(f"{'ok':<5} {'trust':<{width}} {loaded.source}: {loaded.trust}")
    for name, run in checks(root, settings):
        try:
            detail = run()
        except DoctorFailure as exc:
            warning = isinstance(exc, DoctorWarning)
            failed += not warning
            print(f"{'warn' if warning else 'fail':<5} {name:<{width}} {exc}")
            print(f"{'':<5} {'':<{width}} hint: {exc.hint}")
        except Exception as exc:
            failed += 1
            print(f"{'fail':<5} {name:<{width}} unexpected error: {exc}")
        else:
            print(f"{'ok':<5} {name:<{width}} {detail}")
    if not settings.inference.endpoints and not settings.execution.gateway_targets():
        print(
            f"{'info':<5} {'remote':<{width}} no endpoints or gateway configured: everything runs locally"
        )
    return 1 if failed else 0
