"""AI review of open documents, published in the "ai" slot beside ruff's findings.

On every change the document's units are looked up in the cache (no tokens: unchanged code
keeps its findings, wherever it moved); on save, the units the cache does not know are sent to
the model as inference jobs through the durable queue, and each answer is published when it
arrives, only on the text it was computed for. Jobs a newer save no longer needs are cancelled
in the queue. Nothing here waits on a dispatcher thread: remote_exec.aio does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import attrs
from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_server.executors import Executors
from lsp_server.review.ai import review as ai
from lsp_server.review.ai.answer import MAX_BAD_ANSWERS, BadAnswer, SuggestedFix
from lsp_server.review.ai.noise import NoisePolicy
from lsp_server.review.findings import Finding, Snapshot
from lsp_server.review.local import LocalEngine
from lsp_server.services.folders import Folder, Folders
from lsp_server.services.publisher import Publisher
from lsp_server.services.status import StatusReporter
from lsp_server.tasks import TaskSet

log = logging.getLogger("gantry.ai")
SOURCE = ai.ENGINE
_QUIET_S = 0.3
"""How long typing pauses before the AI findings follow the text (from the cache)."""
_LOCAL_WAIT_S = 10.0
"""How long a review waits for ruff's findings on the same text (they are in the context pack,
so in the cache key): past it, ruff is stuck or broken and the review goes on without them."""


@attrs.define
class _Document:
    """One document's AI review in progress."""

    task: asyncio.Task | None = None
    again: bool = False
    ask_model: bool = False
    jobs: dict[str, int] = attrs.Factory(dict)
    """Queue job ids by cache key, of the answers still awaited."""
    asking: TaskSet = attrs.Factory(lambda: TaskSet(log))
    """The waits for those answers: apart from `task`, so that edits made while the model is
    slow or down are still reviewed from the cache (and cancel what they supersede)."""
    quiet: asyncio.TimerHandle | None = None
    """A review from the cache, due once typing pauses."""
    offered: dict[str, tuple[Finding, SuggestedFix]] = attrs.Factory(dict)
    """The fixes last offered, by fingerprint: one found applied is an "accepted" verdict."""


class AiReviewer:
    def __init__(
        self,
        server: LanguageServer,
        folders: Folders,
        publisher: Publisher,
        status: StatusReporter,
        executors: Executors,
        notify_user: Callable[[str, types.MessageType], None],
    ) -> None:
        self._server = server
        self._folders = folders
        self._publisher = publisher
        self._status = status
        self._executors = executors
        self._notify_user = notify_user
        self._documents: dict[str, _Document] = {}
        self._on_disk: list[_Document] = []
        """The files on disk under review, for the count of answers awaited."""
        self._waits = TaskSet(log)
        """Verdict writes and job cancellations: nothing awaits them."""

    @property
    def waiting(self) -> int:
        """Units whose answers are awaited from the model."""
        documents = (*self._documents.values(), *self._on_disk)
        return sum(len(d.jobs) for d in documents)

    def request(self, uri: str, *, ask_model: bool) -> None:
        """Review `uri` from the cache, and ask the model for what it lacks when `ask_model`
        (a save, a review command); coalesced as the local review is. Without `ask_model`
        (typing) the review waits until the document has been quiet for `_QUIET_S`: a pass
        costs a few ruff reviews of CPU, and it must not slow the ruff diagnostics of the
        next keystroke."""
        folder = self._folders.for_uri(uri)
        if folder.configured.is_set() and not folder.settings.inference.endpoints:
            return  # no model: nothing to do on the typing path
        document = self._documents.setdefault(uri, _Document())
        if document.quiet is not None:
            document.quiet.cancel()
            document.quiet = None
        if not ask_model:
            loop = asyncio.get_running_loop()
            document.quiet = loop.call_later(_QUIET_S, self._start, uri, document)
            return
        document.ask_model = document.ask_model or ask_model
        self._start(uri, document)

    def _start(self, uri: str, document: _Document) -> None:
        document.quiet = None
        if self._documents.get(uri) is not document:
            return  # closed meanwhile
        if document.task is not None:
            document.again = True
            return
        document.task = asyncio.create_task(self._run(uri, document))

    def forget(self, uri: str) -> None:
        document = self._documents.pop(uri, None)
        if document is not None:
            if document.quiet is not None:
                document.quiet.cancel()
            if document.task is not None:
                document.task.cancel()
            document.asking.cancel()
            self._cancel_jobs(self._folders.for_uri(uri), list(document.jobs.values()))

    async def _run(self, uri: str, document: _Document) -> None:
        try:
            while True:
                document.again, ask_model = False, document.ask_model
                document.ask_model = False
                await self._review(uri, document, ask_model)
                if not document.again:
                    return
        except Exception:  # a bug in one review must not take the server down
            self._failed(uri)
        finally:
            document.task = None

    async def review_on_disk(self, paths: list[Path]) -> list[tuple[Path, str]]:
        """Review files on disk (`gantry check --ai`): from the cache, and from the model for
        what it lacks, each published when its answers are in; returns when all are. Files
        open in the editor are reviewed from their text instead. Returns the files whose AI
        review is incomplete (a unit got no answer), each with why: CI must not read them as
        clean."""
        reviews, reviewed = [], []
        for path in paths:
            uri = path.as_uri()
            if uri in self._server.workspace.text_documents:
                self.request(uri, ask_model=True)
                continue
            folder = self._folders.for_path(path)
            snapshot = await self._executors.background.run(_read, path, uri, folder.settings)
            if snapshot is not None:
                document = _Document()
                self._on_disk.append(document)
                reviews.append(
                    self._review_snapshot(snapshot, folder, document, True, detach=False)
                )
                reviewed.append(path)
        try:
            outcomes = await asyncio.gather(*reviews)
        finally:
            self._on_disk = [d for d in self._on_disk if d.jobs]
        return [
            (path, "; ".join(dict.fromkeys(reasons)))
            for path, reasons in zip(reviewed, outcomes, strict=True)
            if reasons
        ]

    async def _review(self, uri: str, document: _Document, ask_model: bool) -> None:
        folder = self._folders.for_uri(uri)
        await folder.ready.wait()
        snapshot = self._folders.snapshot(self._server.workspace, uri)
        if snapshot is not None:
            await self._review_snapshot(snapshot, folder, document, ask_model)

    async def _review_snapshot(
        self,
        snapshot: Snapshot,
        folder: Folder,
        document: _Document,
        ask_model: bool,
        *,
        detach: bool = True,
    ) -> list[str]:
        """Review from the cache and publish; ask the model for the misses when `ask_model`:
        waited for here unless `detach` (an open document: its answers publish when they
        come, while later edits are reviewed meanwhile). Returns why units got no answer,
        when waited for (none: the review is complete)."""
        await folder.ready.wait()
        endpoints = folder.settings.inference.endpoints
        if not endpoints or not ai.reviewable(snapshot):
            return []
        path, exclude = _relative(snapshot, folder), folder.settings.inference.exclude
        if _excluded(path, exclude):
            return []  # its content never leaves this machine
        local = await self._local(snapshot)
        plan = await self._executors.background.run(
            ai.plan,
            snapshot,
            folder.store,
            path=path,
            model=endpoints[0].model,
            budget=folder.settings.inference.context_budget,
            local=local,
            exclude=exclude,
            verdicts=ai.past_verdicts(
                folder.store.verdicts().values() if folder.store is not None else (),
                snapshot.path,
            ),
        )
        self._note_accepted(folder, snapshot, document)
        shown: dict[str, tuple[Finding, ...]] = {}
        for review in plan.units:
            if (answered := plan.cached.get(review.key)) is not None:
                shown[review.key] = await self._findings(
                    folder, snapshot, review, answered, local, cached=True
                )
        if not self._current(snapshot):
            # Edited meanwhile: the loop reviews the latest text next. This one must neither
            # publish nor cancel the jobs the latest text may still need; a save's request to
            # ask the model carries over to it.
            document.ask_model = document.ask_model or ask_model
            document.again = True
            return []
        self._publish(snapshot, plan, shown)
        keys = {review.key for review in plan.units}
        superseded = [job for key, job in document.jobs.items() if key not in keys]
        for key in [key for key in document.jobs if key not in keys]:
            del document.jobs[key]
        self._cancel_jobs(folder, superseded)
        if not ask_model or not plan.misses:
            return []
        if folder.remote is None or await folder.remote.settled() is None:
            # no remote side (it failed to start, and said why)
            return ["remote execution is unavailable; see the server log"]
        asks = [
            self._ask(folder, document, snapshot, plan, review, shown, local)
            for review in plan.misses
        ]
        if not detach:
            return await self._asking(asks)
        document.asking.spawn(self._detached(snapshot.uri, asks), f"AI review of {snapshot.uri}")
        return []

    async def _asking(self, asks: list) -> list[str]:
        """Wait for the asks; why some got no usable answer."""
        self._report()
        try:
            return [reason for reason in await asyncio.gather(*asks) if reason is not None]
        finally:
            self._report()

    async def _detached(self, uri: str, asks: list) -> None:
        try:
            await self._asking(asks)
        except Exception:  # a bug in one review must not take the server down
            self._failed(uri)

    def _failed(self, uri: str) -> None:
        log.exception("AI review of %s failed", uri)
        self._notify_user(
            f"the AI review of {uri} failed; see the server log", types.MessageType.Error
        )

    async def _ask(self, folder, document, snapshot, plan, review, shown, local) -> str | None:
        """Send one unit to the model through the queue; publish its findings when answered.
        Returns why there are none when it got no usable answer."""
        dispatcher = folder.remote.dispatcher
        from remote_exec.aio import JobNotDone
        from remote_exec.jobs import JobKind

        for attempt in range(1, MAX_BAD_ANSWERS + 1):
            key = f"ai-review:{review.key}" + (f"#{attempt}" if attempt > 1 else "")
            job = await dispatcher.submit(key, JobKind.INFERENCE, review.body)
            document.jobs[review.key] = job.id
            self._report()
            try:
                result = await dispatcher.result(job.id)
            except JobNotDone as exc:
                log.info("AI review of %s in %s ended: %s", review.unit.name, snapshot.path, exc)
                return f"{review.unit.name}: {exc.job.error or exc.job.state}"
            finally:
                document.jobs.pop(review.key, None)
            answered = ai.Answered(
                content=result["content"],
                model=result["model"],
                endpoint=result.get("endpoint"),
                tokens=sum(result.get("usage", {}).values()) or None,
                at=result.get("answered_at") or time.time(),
            )
            answer = ai.parse(review, answered)
            if isinstance(answer, BadAnswer):
                log.warning(
                    "a bad answer for %s (try %d): %s", review.unit.name, attempt, answer.reason
                )
                continue
            if folder.store is not None:
                await self._executors.background.run(
                    folder.store.put_ai_review,
                    review.key,
                    answered.dumps(),
                    model=answered.model,
                    prompt_version=ai.PROMPT_VERSION,
                )
            shown[review.key] = await self._findings(
                folder, snapshot, review, answered, local, cached=False, answer=answer
            )
            self._publish(snapshot, plan, shown)
            return None
        problem = (
            f"the model's answers for {review.unit.name} did not fit the schema "
            f"{MAX_BAD_ANSWERS} times; it is not reviewed"
        )
        self._status.set_problem("ai", problem)
        return problem

    async def _findings(
        self, folder: Folder, snapshot, review, answered, local, *, cached, answer=None
    ):
        answer = answer if answer is not None else ai.parse(review, answered)
        if isinstance(answer, BadAnswer):  # a cache from an older schema: ignored
            return ()
        return await self._executors.background.run(
            ai.findings,
            snapshot,
            review,
            answer,
            answered,
            cached=cached,
            local=local,
            dismissed=folder.dismissed,
            policy=NoisePolicy(
                min_confidence=folder.settings.inference.min_confidence,
                max_per_unit=folder.settings.inference.max_per_unit,
            ),
            root=folder.root,
        )

    def _publish(
        self, snapshot: Snapshot, plan: ai.Plan, shown: dict[str, tuple[Finding, ...]]
    ) -> None:
        if not self._current(snapshot):
            # The text moved on while the model answered (a queued review that drained late):
            # putting these would replace the slot of the newer text. The answer is cached, so
            # a review of the current text from the cache shows it re-anchored by content, or
            # not at all if its unit changed.
            if snapshot.uri in self._documents:
                self.request(snapshot.uri, ask_model=False)
            return
        ordered = [f for review in plan.units for f in shown.get(review.key, ())]
        self._publisher.put(SOURCE, snapshot, tuple(ordered))
        if (document := self._documents.get(snapshot.uri)) is not None:
            fixes = ai.offered_fixes(snapshot, ordered)
            by_fingerprint = {f.fingerprint: f for f in ordered}
            document.offered = {fp: (by_fingerprint[fp], fix) for fp, fix in fixes.items()}

    def _note_accepted(self, folder: Folder, snapshot: Snapshot, document: _Document) -> None:
        """Record as "accepted" each offered fix that the text now shows applied (by the code
        action, or typed by hand): verdicts are summarised into later prompts for the file."""
        if folder.store is None or not document.offered:
            return
        from lsp_server.review.ai.fingerprint import fix_applied
        from lsp_server.store import Verdict

        for fingerprint, (finding, fix) in list(document.offered.items()):
            if fix_applied(fix, snapshot.text):
                del document.offered[fingerprint]
                verdict = Verdict(
                    fingerprint, "accepted", finding.rule, snapshot.path, finding.message
                )
                self._waits.spawn(
                    self._executors.background.run(folder.store.set_verdict, verdict),
                    f"storing the accepted fix {fingerprint}",
                )

    def _current(self, snapshot: Snapshot) -> bool:
        """Whether an open document's snapshot is its text now (one on disk always is)."""
        if snapshot.version is None:
            return True
        document = self._server.workspace.text_documents.get(snapshot.uri)
        return document is not None and document.version == snapshot.version

    async def _local(self, snapshot: Snapshot) -> tuple[Finding, ...]:
        """Ruff's findings on this very text, waited for: they go into the context pack, so
        reading them before ruff is done would make the cache key depend on which finished
        first (and cancel a queued review of an unchanged unit as superseded)."""
        if snapshot.version is None:
            slot = self._publisher.slot(snapshot.uri, LocalEngine.source)
        else:
            slot = await self._publisher.settled(
                snapshot.uri, LocalEngine.source, snapshot.version, _LOCAL_WAIT_S
            )
        if slot is None or slot.snapshot.version != snapshot.version:
            return ()
        return slot.findings

    def _cancel_jobs(self, folder: Folder, jobs: list[int]) -> None:
        remote = folder.remote.dispatcher if folder.remote is not None else None
        if remote is None or not jobs:
            return

        async def cancel() -> None:
            for job in jobs:
                await remote.cancel(job)

        self._waits.spawn(cancel(), f"cancelling {len(jobs)} superseded AI review job(s)")

    def _report(self) -> None:
        self._status.ai_waiting = self.waiting
        self._status.update()


def _read(path: Path, uri: str, settings) -> Snapshot | None:
    """A file on disk as a snapshot (version None), if it is text Gantry reviews."""
    from lsp_server.analysis.languages import language_for_path
    from lsp_server.analysis.workspace_files import read_source_text

    language = language_for_path(str(path))
    if language is None:
        return None
    try:
        text = read_source_text(path).text
    except (OSError, ValueError):
        return None
    return Snapshot(uri, str(path), None, text, language, settings)


def _excluded(path: str, globs) -> bool:
    from remote_exec.inference.exclusion import is_excluded

    return is_excluded(path, globs)


def _relative(snapshot: Snapshot, folder: Folder) -> str:
    path = Path(snapshot.path)
    if folder.root is not None and path.is_relative_to(folder.root):
        return path.relative_to(folder.root).as_posix()
    return path.name
