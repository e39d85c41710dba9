"""`workspace/executeCommand` handlers. Arguments are typed and validated: a malformed call
gets a JSON-RPC error, never a crash."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

import attrs
import cattrs
from pygls.exceptions import JsonRpcInvalidParams

if TYPE_CHECKING:
    from lsp_server.server import GantryServer

_converter = cattrs.Converter()


@attrs.frozen
class DismissArgs:
    uri: str
    fingerprint: str
    verdict: Literal["dismissed", "false_positive"] = "dismissed"
    reason: str | None = None


def parse_args(cls: type, args: Any):
    """Commands take one object argument; accept it bare or as the single list element."""
    value = args[0] if isinstance(args, list) and len(args) == 1 else args
    try:
        return _converter.structure(value, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        names = ", ".join(f.name for f in attrs.fields(cls))
        raise JsonRpcInvalidParams(f"expected one object with {names}; got {args!r}") from exc


def register(server: GantryServer) -> None:
    @server.command("gantry.dismissFinding")
    async def dismiss_finding(ls, *args: Any) -> dict:  # no hints: pygls resolves them
        from lsp_server.store import Verdict

        params: DismissArgs = parse_args(DismissArgs, list(args))
        snapshot, findings = ls.published.get(params.uri, (None, ()))
        finding = next((f for f in findings if f.fingerprint == params.fingerprint), None)
        verdict = Verdict(
            fingerprint=params.fingerprint,
            verdict=params.verdict,
            rule=finding.rule if finding else "",
            path=snapshot.path if snapshot else params.uri,
            message=(params.reason or finding.message) if finding else (params.reason or ""),
        )
        if ls.store is not None:
            await asyncio.to_thread(ls.store.set_verdict, verdict)
        else:
            ls.notify_user("the context store is not available: this dismissal lasts until restart")
        ls.dismissed = ls.dismissed | {params.fingerprint}
        for uri, (snap, kept) in list(ls.published.items()):
            if any(f.fingerprint == params.fingerprint for f in kept):
                ls.reviewer.publish(snap, kept)
        return {"fingerprint": params.fingerprint, "verdict": params.verdict}
