""" "Apply and verify" for an AI finding's validated fix: apply it (workspace/applyEdit, when the
client takes it; otherwise the code action carries the edit and the client applies it before it
runs the command), then run the tests that cover the unit as an exec job through the folder's
dispatcher, and tell the user how they went. Nothing runs outside the sandbox: a job the
sandbox cannot run is parked by the dispatcher with the reason, which is what the user reads.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cattrs
from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from lsp_server.capabilities import ClientCaps
from lsp_server.convert import workspace_edit
from lsp_server.executors import Executors
from lsp_server.review import verify
from lsp_server.review.findings import Finding, Snapshot
from lsp_server.services.folders import Folders
from lsp_server.services.publisher import Publisher
from lsp_server.services.status import StatusReporter

log = logging.getLogger("gantry.verify")
_APPLY_WAIT_S = 30.0
_QUEUE_SLACK_S = 120.0
"""How long past the job's own timeout the command waits (for a slot, a gateway): after that
the job stays queued, and the user is told where to look."""
_REMEMBERED = 32
_STATES = {"pending": "queued", "leased": "running"}


class FixVerifier:
    def __init__(
        self,
        server: LanguageServer,
        folders: Folders,
        publisher: Publisher,
        status: StatusReporter,
        executors: Executors,
        caps: Callable[[], ClientCaps],
        notify_user: Callable[[str, types.MessageType], None],
    ) -> None:
        self._server = server
        self._folders = folders
        self._publisher = publisher
        self._status = status
        self._executors = executors
        self._caps = caps
        self._notify_user = notify_user
        self._offered: OrderedDict[tuple[str, str], tuple[Snapshot, Finding]] = OrderedDict()
        """Fixes offered with their edit in the action (clients without applyEdit): by the
        time the command runs the client has applied it, and the finding is no longer shown."""

    @staticmethod
    def verifiable(finding: Finding, snapshot: Snapshot) -> bool:
        return (
            finding.fix is not None
            and finding.provenance.engine == "ai"
            and snapshot.language == "python"
        )

    def remember(self, snapshot: Snapshot, finding: Finding) -> None:
        self._offered[(snapshot.uri, finding.fingerprint)] = (snapshot, finding)
        self._offered.move_to_end((snapshot.uri, finding.fingerprint))
        while len(self._offered) > _REMEMBERED:
            self._offered.popitem(last=False)

    async def verify(self, uri: str, fingerprint: str) -> dict[str, Any]:
        """Apply the fix if it is not applied yet, run the tests that cover its unit, report.
        Returns what was reported, as data."""
        current = self._folders.snapshot(self._server.workspace, uri)
        target = self._target(uri, fingerprint)
        if current is None or target is None:
            return self._tell(
                "not-run", "that fix is no longer offered (the text changed); nothing was run"
            )
        before, finding = target
        assert finding.fix is not None
        fixed = verify.apply_edits(before.text, finding.fix.edits)
        applied = True
        if current.text == before.text:
            applied = await self._apply(current, finding)
            if applied is None:
                return self._tell("not-run", "the editor did not apply the fix; nothing was run")
        elif current.text != fixed:
            return self._tell(
                "not-run", "the document changed since the fix was offered; nothing was run"
            )
        return await self._run(current, before, finding, fixed, applied)

    def _target(self, uri: str, fingerprint: str) -> tuple[Snapshot, Finding] | None:
        shown = self._publisher.shown(uri)
        if shown is not None:
            for finding in shown.findings:
                if finding.fingerprint == fingerprint and self.verifiable(finding, shown.snapshot):
                    return shown.snapshot, finding
        return self._offered.get((uri, fingerprint))

    async def _apply(self, current: Snapshot, finding: Finding) -> bool | None:
        """True once the client applied the fix; False when it cannot be asked to (the tests
        then run on the fixed text all the same); None when it refused."""
        caps = self._caps()
        if not caps.apply_edit:
            return False
        assert finding.fix is not None
        edit = workspace_edit(
            caps, self._server.workspace.position_codec, current, finding.fix.edits
        )
        try:
            result = await asyncio.wait_for(
                self._server.workspace_apply_edit_async(
                    types.ApplyWorkspaceEditParams(edit=edit, label=finding.fix.message)
                ),
                _APPLY_WAIT_S,
            )
        except Exception as exc:  # unanswered or an error: it was not applied
            log.info("workspace/applyEdit failed: %s", exc)
            return None
        return True if result.applied else None

    async def _run(
        self, snapshot: Snapshot, before: Snapshot, finding: Finding, fixed: str, applied: bool
    ) -> dict[str, Any]:
        folder = self._folders.for_uri(snapshot.uri)
        if folder.root is None:
            return self._tell(
                "not-run", "the file is outside every workspace folder; no tests were run"
            )
        unit = verify.unit_at("python", before.text, finding.start[0])
        name = verify.covering_name(unit)
        rel = Path(snapshot.path).relative_to(folder.root).as_posix()
        settings = folder.settings
        open_texts = {}
        for document in list(self._server.workspace.text_documents.values()):
            path = Path(to_fs_path(document.uri) or document.uri)
            if path.is_relative_to(folder.root):
                open_texts[path.relative_to(folder.root).as_posix()] = document.source
        plan = await self._executors.background.run(
            verify.plan,
            folder.root,
            rel,
            fixed,
            name,
            open_texts=open_texts,
            ignore=settings.index.exclude,
            private=settings.inference.exclude,
            max_file_bytes=settings.max_file_size,
        )
        what = f"`{name}`" if name else "top-level code"
        prefix = "" if applied else "the fix is not applied in the editor; "
        if plan.spec is None:
            why = f"no test file mentions {what}" if name else "top-level code has no tests by name"
            done = "the fix is applied, but " if applied else prefix
            return self._tell(
                "no-tests",
                f"{done}no tests cover {what} ({why}); nothing was run",
                types.MessageType.Info,
            )
        if folder.remote is None or (dispatcher := await folder.remote.settled()) is None:
            return self._tell(
                "not-run",
                "remote execution is unavailable (see the server log); the tests were not run",
            )
        from remote_exec.jobs import JobKind, Priority

        more = len(plan.tests) - 3
        files = ", ".join(plan.tests[:3]) + (f" and {more} more" if more > 0 else "")
        digest = hashlib.sha256(snapshot.uri.encode()).hexdigest()[:16]
        async with self._status.progress(f"Gantry: verifying the fix to {what}") as report:
            report(f"running {files}", None)
            # A newer verification of the file supersedes one still waiting or running.
            await dispatcher.cancel_superseded(f"verify-fix:{digest}:")
            job = await dispatcher.submit(
                f"verify-fix:{digest}:{uuid.uuid4().hex}",
                JobKind.EXEC,
                cattrs.Converter().unstructure(plan.spec),
                priority=Priority.INTERACTIVE,
                max_attempts=2,
            )
            stop = dispatcher.follow(
                job.id, lambda j: report(f"{files}: {_STATES.get(j.state, j.state)}", None)
            )
            try:
                ended = await asyncio.wait_for(
                    dispatcher.ended(job.id), verify.TIMEOUT_S + _QUEUE_SLACK_S
                )
            except TimeoutError:
                return self._tell(
                    "queued",
                    f"the tests covering {what} still wait in the queue (job {job.id}); "
                    "see gantry.queueStatus",
                    job=job.id,
                )
            finally:
                stop()
        if ended.state != "done":
            why = ended.error or (
                "a newer verification of the file replaced it"
                if ended.state == "cancelled"
                else f"the job ended {ended.state}"
            )
            return self._tell(
                "not-run", f"the tests covering {what} did not run: {why}", job=job.id
            )
        outcome = verify.read_result(ended.result or {})
        where = (ended.result or {}).get("where", "local")
        place = "the local sandbox" if where == "local" else f"the gateway {where}"
        counts = f"{outcome.passed} passed" + (
            f", {outcome.failed} failed" if outcome.failed else ""
        )
        counts += f", {outcome.skipped} skipped" if outcome.skipped else ""
        left = (
            f"; {plan.left_out} Python files were left out of the bundle" if plan.left_out else ""
        )
        data = {
            "job": job.id,
            "tests": list(plan.tests),
            "passed": outcome.passed,
            "failed": outcome.failed,
            "skipped": outcome.skipped,
            "firstFailure": outcome.first_failure,
        }
        if outcome.problem is not None:
            return self._tell(
                "error",
                f"{prefix}the tests covering {what} could not run: {outcome.problem}{left}",
                **data,
            )
        if outcome.failed:
            return self._tell(
                "failed",
                f"{prefix}the fix to {what} fails the tests that cover it ({files}, in {place}): "
                f"{counts}; first failure: {outcome.first_failure}{left}",
                **data,
            )
        return self._tell(
            "passed",
            f"{prefix}the fix to {what} passes the tests that cover it ({files}, in {place}): "
            f"{counts}{left}",
            types.MessageType.Info,
            **data,
        )

    def _tell(
        self, outcome: str, message: str, kind=types.MessageType.Warning, **data: Any
    ) -> dict[str, Any]:
        self._notify_user(message, kind)
        return {"outcome": outcome, "message": message, **data}
