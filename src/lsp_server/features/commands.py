"""`workspace/executeCommand` handlers. Arguments are typed and validated: a malformed call
gets a JSON-RPC error, never a crash."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs
import cattrs
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams
from pygls.uris import to_fs_path

from lsp_server.analysis.languages import language_for_path
from lsp_server.features.lifecycle import open_store

if TYPE_CHECKING:
    from lsp_server.features.diagnostics import OnDiskReview
    from lsp_server.server import GantryServer

log = logging.getLogger("gantry.commands")
_converter = cattrs.Converter()


@attrs.frozen
class DismissArgs:
    uri: str
    fingerprint: str
    verdict: Literal["dismissed", "false_positive"] = "dismissed"
    reason: str | None = None


@attrs.frozen
class ReviewFileArgs:
    uri: str


@attrs.frozen
class ReviewPathsArgs:
    paths: list[str]
    """Files or folders on disk (file system paths, not URIs); relative ones are taken from
    the workspace root."""
    fingerprints: bool = True
    """False when the caller will not read them (a text report): they cost a parse per file."""


def _reviewed(result: OnDiskReview) -> OnDiskReview:
    if result.problem is not None:  # nothing was reviewed: an answer would read as "clean"
        raise JsonRpcInternalError(result.problem)
    return result


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
        from lsp_server.store import Verdict, VerdictNotStored

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
        if ls.store is None:  # not opened because nothing needed it yet (indexing is off)
            await open_store(ls, create=True)
        if ls.store is None:
            ls.notify_user("the context store is not available: this dismissal lasts until restart")
        else:
            try:
                await asyncio.to_thread(ls.store.set_verdict, verdict)
            except VerdictNotStored as exc:  # journalled: kept, but the user should know where
                ls.notify_user(str(exc))
            except Exception as exc:  # not saved at all; it still holds for this session
                log.exception("cannot save a verdict")
                ls.notify_user(f"this dismissal could not be saved ({exc}): it lasts until restart")
        ls.dismissed = ls.dismissed | {params.fingerprint}
        for uri, (snap, kept) in list(ls.published.items()):
            if any(f.fingerprint == params.fingerprint for f in kept):
                ls.reviewer.publish(snap, kept)
        return {"fingerprint": params.fingerprint, "verdict": params.verdict}

    @server.command("gantry.reviewFile")
    async def review_file(ls, *args: Any) -> dict:
        params: ReviewFileArgs = parse_args(ReviewFileArgs, list(args))
        path = to_fs_path(params.uri)
        if params.uri in ls.workspace.text_documents:
            ls.reviewer.request(params.uri)
            return {"files": 1}
        if not path or language_for_path(path) is None or not Path(path).is_file():
            raise JsonRpcInvalidParams(f"not a file Gantry reviews: {params.uri}")
        result = _reviewed(await ls.reviewer.review_on_disk([Path(path)]))
        return {"files": len(result.files), "findings": result.findings}

    @server.command("gantry.reviewWorkspace")
    async def review_workspace(ls, *args: Any) -> dict:
        if ls.root is None:
            raise JsonRpcInvalidParams("no workspace folder is open")
        result = _reviewed(await ls.reviewer.review_on_disk([ls.root]))
        return {"files": len(result.files), "findings": result.findings}

    @server.command("gantry.reviewPaths")
    async def review_paths(ls, *args: Any) -> dict:
        """Review files and folders on disk as `ruff check PATHS` would (what `gantry check`
        asks); diagnostics are published, one per file reviewed, before this answers with the
        paths of the files reviewed and of those skipped, and why."""
        params: ReviewPathsArgs = parse_args(ReviewPathsArgs, list(args))
        base = ls.root or Path.cwd()
        paths = [base / path for path in params.paths]
        result = _reviewed(
            await ls.reviewer.review_on_disk(paths, fingerprints=params.fingerprints)
        )
        return {
            "files": [str(path) for path in result.files],
            "skipped": [{"path": str(path), "reason": reason} for path, reason in result.skipped],
            "findings": result.findings,
        }
