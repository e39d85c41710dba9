"""`workspace/executeCommand` handlers. Arguments are typed and validated: a malformed call
gets a JSON-RPC error, never a crash."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from lsp_server.analysis.languages import language_for_path
from lsp_server.services.reviewer import OnDiskReview
from lsp_server.session import Session

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


def register(server: LanguageServer, session: Session) -> None:
    folders, reviewer = session.folders, session.reviewer

    @server.command("gantry.dismissFinding")
    async def dismiss_finding(ls, *args: Any) -> dict:  # no hints: pygls resolves them
        from lsp_server.store import Verdict, VerdictNotStored

        params: DismissArgs = parse_args(DismissArgs, list(args))
        shown = session.publisher.shown(params.uri)
        findings = shown.findings if shown is not None else ()
        finding = next((f for f in findings if f.fingerprint == params.fingerprint), None)
        verdict = Verdict(
            fingerprint=params.fingerprint,
            verdict=params.verdict,
            rule=finding.rule if finding else "",
            path=shown.snapshot.path if shown else params.uri,
            message=(params.reason or finding.message) if finding else (params.reason or ""),
        )
        folder = folders.for_uri(params.uri)
        if folder.store is None and folder.root is not None:
            # Not opened because nothing needed it yet (indexing is off).
            await session.folder_service.open_store(folder, create=True)
        if folder.store is None:
            session.notify_user(
                "the context store is not available: this dismissal lasts until restart"
            )
        else:
            try:
                await session.executors.background.run(folder.store.set_verdict, verdict)
            except VerdictNotStored as exc:  # journalled: kept, but the user should know where
                session.notify_user(str(exc))
            except Exception as exc:  # not saved at all; it still holds for this session
                log.exception("cannot save a verdict")
                session.notify_user(
                    f"this dismissal could not be saved ({exc}): it lasts until restart"
                )
        folder.dismissed = folder.dismissed | {params.fingerprint}
        for other in session.publisher.all_shown():
            if any(f.fingerprint == params.fingerprint for f in other.findings):
                session.publisher.republish(other.snapshot.uri)
        return {"fingerprint": params.fingerprint, "verdict": params.verdict}

    @server.command("gantry.reviewFile")
    async def review_file(ls, *args: Any) -> dict:
        params: ReviewFileArgs = parse_args(ReviewFileArgs, list(args))
        path = to_fs_path(params.uri)
        if params.uri in ls.workspace.text_documents:
            reviewer.request(params.uri)
            return {"files": 1}
        if not path or language_for_path(path) is None or not Path(path).is_file():
            raise JsonRpcInvalidParams(f"not a file Gantry reviews: {params.uri}")
        result = _reviewed(await reviewer.review_on_disk([Path(path)]))
        return {"files": len(result.files), "findings": result.findings}

    @server.command("gantry.reviewWorkspace")
    async def review_workspace(ls, *args: Any) -> dict:
        roots = [folder.root for folder in folders if folder.root is not None]
        if not roots:
            raise JsonRpcInvalidParams("no workspace folder is open")
        result = _reviewed(await reviewer.review_on_disk(roots))
        return {"files": len(result.files), "findings": result.findings}

    @server.command("gantry.reviewPaths")
    async def review_paths(ls, *args: Any) -> dict:
        """Review files and folders on disk as `ruff check PATHS` would (what `gantry check`
        asks); diagnostics are published, one per file reviewed, before this answers with the
        paths of the files reviewed and of those skipped, and why."""
        params: ReviewPathsArgs = parse_args(ReviewPathsArgs, list(args))
        first = folders.first
        base = first.root if first is not None and first.root is not None else Path.cwd()
        paths = [base / path for path in params.paths]
        result = _reviewed(await reviewer.review_on_disk(paths, fingerprints=params.fingerprints))
        return {
            "files": [str(path) for path in result.files],
            "skipped": [{"path": str(path), "reason": reason} for path, reason in result.skipped],
            "findings": result.findings,
        }
