"""`workspace/executeCommand` handlers. Arguments are typed and validated: a malformed call
gets a JSON-RPC error, never a crash."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from lsp_server.analysis.languages import language_for_path
from lsp_server.contract import commands
from lsp_server.contract.commands import (
    DismissArgs,
    ExpectedFailureArgs,
    GenerateTestsArgs,
    NoArgs,
    ReviewFileArgs,
    ReviewPathsArgs,
    VerifyFixArgs,
)
from lsp_server.contract.converter import ContractError
from lsp_server.services.reviewer import OnDiskReview
from lsp_server.services.testgen import Refused
from lsp_server.session import Session

log = logging.getLogger("gantry.commands")
Handler = Callable[[Any, Any], Awaitable[Any]]


def _reviewed(result: OnDiskReview) -> OnDiskReview:
    if result.problem is not None:  # nothing was reviewed: an answer would read as "clean"
        raise JsonRpcInternalError(result.problem)
    return result


def command(server: LanguageServer, name: str) -> Callable[[Handler], Handler]:
    """Register a `gantry.*` command whose handler takes its arguments typed, as the class
    `contract.commands.COMMANDS` names for it: arguments that do not fit get InvalidParams
    saying what is wrong, and the handler never runs."""
    cls = commands.COMMANDS[name]

    def register(handler: Handler) -> Handler:
        @server.command(name)
        async def run(ls, *args: Any) -> Any:  # no hints: pygls would structure by them
            try:
                params = commands.parse(cls, list(args))
            except ContractError as exc:
                raise JsonRpcInvalidParams(f"{name}: invalid arguments: {exc}") from exc
            return await handler(ls, params)

        return handler

    return register


def register(server: LanguageServer, session: Session) -> None:
    folders, reviewer = session.folders, session.reviewer

    @command(server, "gantry.dismissFinding")
    async def dismiss_finding(ls: LanguageServer, params: DismissArgs) -> dict:
        from lsp_server.store import Verdict, VerdictNotStored

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

    @command(server, "gantry.verifyFix")
    async def verify_fix(ls: LanguageServer, params: VerifyFixArgs) -> dict:
        """ "Apply and verify": answers once the tests have run (or why they did not)."""
        return await session.verifier.verify(params.uri, params.fingerprint)

    @command(server, "gantry.reviewFile")
    async def review_file(ls: LanguageServer, params: ReviewFileArgs) -> dict:
        path = to_fs_path(params.uri)
        if params.uri in ls.workspace.text_documents:
            reviewer.request(params.uri)
            session.ai_reviewer.request(params.uri, ask_model=True)
            return {"files": 1}
        if not path or language_for_path(path) is None or not Path(path).is_file():
            raise JsonRpcInvalidParams(f"not a file Gantry reviews: {params.uri}")
        result = _reviewed(await reviewer.review_on_disk([Path(path)]))
        return {"files": len(result.files), "findings": result.findings}

    @command(server, "gantry.reviewWorkspace")
    async def review_workspace(ls: LanguageServer, params: NoArgs) -> dict:
        roots = [folder.root for folder in folders if folder.root is not None]
        if not roots:
            raise JsonRpcInvalidParams("no workspace folder is open")
        result = _reviewed(await reviewer.review_on_disk(roots))
        return {"files": len(result.files), "findings": result.findings}

    @command(server, "gantry.reviewPaths")
    async def review_paths(ls: LanguageServer, params: ReviewPathsArgs) -> dict:
        """Review files and folders on disk as `ruff check PATHS` would (what `gantry check`
        asks); diagnostics are published, one per file reviewed, before this answers with the
        paths of the files reviewed and of those skipped, and why."""
        first = folders.first
        base = first.root if first is not None and first.root is not None else Path.cwd()
        paths = [base / path for path in params.paths]
        result = _reviewed(await reviewer.review_on_disk(paths, fingerprints=params.fingerprints))
        answer = {
            "files": [str(path) for path in result.files],
            "skipped": [{"path": str(path), "reason": reason} for path, reason in result.skipped],
            "findings": result.findings,
        }
        if params.ai:  # files a unit of which got no answer: incomplete, never clean
            incomplete = await session.ai_reviewer.review_on_disk(list(result.files))
            answer["aiIncomplete"] = [
                {"path": str(path), "reason": reason} for path, reason in incomplete
            ]
        return answer

    @command(server, "gantry.generateTests")
    async def generate_tests(ls: LanguageServer, params: GenerateTestsArgs) -> dict:
        """Answers once the tests are delivered (or why not); progress meanwhile."""
        lines = None
        if params.range is not None:
            start, end = params.range.start, params.range.end
            # A selection that ends at the start of a line does not take that line.
            last = end.line - 1 if end.character == 0 and end.line > start.line else end.line
            lines = (start.line + 1, last + 1)
        try:
            return await session.testgen.generate(params.uri, params.symbol, lines)
        except Refused as exc:
            raise JsonRpcInvalidParams(f"gantry.generateTests: {exc}") from exc

    @command(server, "gantry.addExpectedFailure")
    async def add_expected_failure(ls: LanguageServer, params: ExpectedFailureArgs) -> dict:
        try:
            return await session.testgen.add_expected_failure(params.uri, params.fingerprint)
        except Refused as exc:
            raise JsonRpcInvalidParams(f"gantry.addExpectedFailure: {exc}") from exc
