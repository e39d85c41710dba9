""" "Generate tests" from the editor: the run in the testgen pool on a copy of the project (open
buffers included), its jobs through the folder's dispatcher (the gateway when it is up, the local
sandbox otherwise), its stages as cancellable `$/progress`, the possible bugs as "gantry-tests"
diagnostics, the kept tests delivered as a `workspace/applyEdit` and shown, or written by the
server (inside the workspace folder only) when the client cannot take the edit or leaves a
file it took off the disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from lsp_server.analysis.workspace_files import read_source_text
from lsp_server.capabilities import ClientCaps
from lsp_server.convert import replacement_edit, workspace_edit
from lsp_server.executors import Executors
from lsp_server.review.findings import Finding, Provenance, Snapshot
from lsp_server.services.folders import Folders
from lsp_server.services.publisher import Publisher
from lsp_server.services.status import StatusReporter
from lsp_server.testgen import targets
from lsp_server.testgen.candidates import Candidate
from lsp_server.testgen.delivery import has_test, merged_text, read_if_there, write_inside
from lsp_server.testgen.dispatch import NotRun, dispatched
from lsp_server.testgen.possible_bugs import PossibleBug, as_expected_failure
from lsp_server.testgen.run_control import STAGES

if TYPE_CHECKING:
    from lsp_server.store import Store
    from remote_exec.aio import AsyncDispatcher

log = logging.getLogger("gantry.testgen")
SOURCE = "tests"
"""The publisher slot, and the engine name: diagnostics read "gantry-tests"."""
RULE = "possible-bug"
_CLIENT_WAIT_S = 30.0


class Refused(ValueError):
    """The request cannot be run (not a Python file in a folder, no such symbol): the message
    says why, for the user."""


@attrs.frozen
class _Bug:
    """A possible bug as shown: what "Add as expected-failure test" needs."""

    bug: PossibleBug
    finding: Finding
    symbols: frozenset[str]
    """The run's symbols: a later run for them replaces it."""
    root: Path
    """The real project root (where its test goes)."""
    test_relpath: str


@attrs.frozen
class _Outcome:
    """What a run produced, off the loop; paths are real (not the copy's)."""

    generated: Any  # testgen.generate.Generated, on the copy
    root: Path
    """The real project root."""
    test_relpath: str
    notes: tuple[str, ...]
    bugs: tuple[tuple[PossibleBug, Finding], ...]


class TestGeneration:
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
        self._pool = executors.testgen
        """Runs hold a worker for their whole budget: their own pool."""
        self._caps = caps
        self._notify_user = notify_user
        self._running: dict[tuple[str, str], threading.Event] = {}
        self._bugs: dict[str, tuple[Snapshot, dict[str, _Bug]]] = {}
        """Possible bugs shown, by document: the text they were found on, by fingerprint."""

    def cancel_all(self) -> None:
        """Stop every run (the server is shutting down): their jobs are killed."""
        for cancel in self._running.values():
            cancel.set()

    # -- what to test -----------------------------------------------------------------

    async def _document(self, uri: str) -> tuple[Snapshot, Path]:
        path = Path(to_fs_path(uri) or "")
        if not uri.startswith("file:") or path.suffix != ".py":
            raise Refused(f"not a Python file: {uri}")
        folder = self._folders.for_uri(uri)
        if folder.root is None or not folder.contains(path):
            raise Refused(f"{path.name} is outside every workspace folder")
        snapshot = self._folders.snapshot(self._server.workspace, uri)
        if snapshot is None:  # not open: its text on disk
            try:
                text = await self._executors.review.run(lambda: read_source_text(path).text)
            except OSError as exc:
                raise Refused(f"{path.name} cannot be read: {exc}") from None
            snapshot = Snapshot(uri, str(path), None, text, "python", folder.settings)
        return snapshot, folder.root

    # -- the run ----------------------------------------------------------------------

    async def generate(
        self, uri: str, symbol: str | None, lines: tuple[int, int] | None
    ) -> dict[str, Any]:
        """Run, deliver, report; what was reported, as data. Raises Refused for a request
        that names nothing to test."""
        snapshot, folder_root = await self._document(uri)
        symbols = await self._executors.review.run(_symbols, snapshot.text, symbol, lines)
        names = ", ".join(s.name for s in symbols)
        key = (uri, names)
        if key in self._running:
            return self._tell(
                "running", f"tests for {names} are being generated already", types.MessageType.Info
            )
        cancel = threading.Event()
        self._running[key] = cancel
        try:
            try:
                outcome = await self._run(snapshot, symbols, names, cancel)
            except asyncio.CancelledError:  # the request itself was cancelled
                cancel.set()
                raise
        finally:
            self._running.pop(key, None)
        if isinstance(outcome, dict):
            return outcome
        return await self._finish(snapshot, folder_root, names, outcome)

    async def _run(self, snapshot: Snapshot, symbols, names: str, cancel: threading.Event):
        loop = asyncio.get_running_loop()
        async with self._status.progress(
            f"Gantry: generating tests for {names}", on_cancel=cancel.set
        ) as report:

            def on_job(stage: str, what: str) -> None:
                if not cancel.is_set():
                    done = 100 * STAGES.index(stage) // len(STAGES)
                    loop.call_soon_threadsafe(report, f"{stage}: {what}", done)

            from lsp_server.testgen.jobs import BundleTooLarge
            from lsp_server.testgen.run_control import Cancelled
            from remote_exec.sandbox import SandboxUnavailable

            folder = self._folders.for_uri(snapshot.uri)
            dispatcher = await folder.remote.settled() if folder.remote is not None else None
            try:
                outcome = await self._pool.run(
                    self._generate_blocking,
                    snapshot,
                    symbols,
                    cancel,
                    on_job,
                    dispatcher,
                    loop,
                    folder.store,
                )
            except Cancelled:
                return self._tell(
                    "cancelled",
                    f"test generation for {names} was cancelled; nothing was written",
                    types.MessageType.Info,
                )
            except (SandboxUnavailable, BundleTooLarge, targets.TargetError, NotRun) as exc:
                return self._tell("not-run", f"no tests were generated for {names}: {exc}")
            except Exception as exc:
                log.exception("test generation failed")
                return self._tell("error", f"test generation for {names} failed: {exc}")
            report(f"place: {len(outcome.generated.funnel.kept)} kept test(s)", 80)
            return outcome

    @staticmethod
    def _generate_blocking(
        snapshot: Snapshot,
        symbols,
        cancel: threading.Event,
        on_job,
        dispatcher: AsyncDispatcher | None,
        loop: asyncio.AbstractEventLoop,
        store: Store | None,
    ) -> _Outcome:
        """In the testgen pool: copy the project, run the engines and the funnel on the copy,
        each job through the folder's dispatcher (the gateway when it is up, the local sandbox
        otherwise) or, without one, in the local sandbox; the run's counts go to the folder's
        store."""
        from lsp_server.review.ruff_engine import RuffUnavailable, find_ruff
        from lsp_server.testgen.generate import generate
        from lsp_server.testgen.history import remember
        from lsp_server.testgen.jobs import Budget, local_runner
        from lsp_server.testgen.model_access import from_settings
        from lsp_server.testgen.run_control import watched
        from lsp_server.testgen.snapshot import copy_project

        settings = snapshot.settings
        budget = Budget.of(settings.testgen.budget_seconds)
        path = Path(snapshot.path)
        real = targets.for_source(
            path, snapshot.text, tuple(symbols), gpu_paths=settings.testgen.gpu_paths
        )
        if real.needs_gpu and (dispatcher is None or not settings.execution.gateway_targets()):
            raise NotRun(
                f"{real.relpath} needs a GPU ({real.needs_gpu}): its tests run only on a gateway,"
                " and none is configured ([[execution.gateways]] in your user settings)"
            )
        try:
            ruff = find_ruff(settings)
        except RuffUnavailable:
            ruff = None
        with tempfile.TemporaryDirectory(prefix="gantry-testgen-") as tmp:
            copy = Path(tmp) / "project"
            copy.mkdir()
            target = copy_project(real, {path: snapshot.text}, copy)
            if dispatcher is not None:
                runner = dispatched(dispatcher, loop, cancel, _job_prefix(snapshot.uri))
            else:
                runner = local_runner(
                    unsandboxed=settings.execution.unsandboxed,
                    work_root=Path(tmp) / "jobs",
                    cancel=cancel,
                )
            run = watched(runner, cancel, on_job)
            generated = generate(
                target,
                run,
                budget,
                # The model's rounds too when one is configured (else no note about it).
                model=from_settings(settings) if settings.inference.endpoints else None,
                reruns=settings.testgen.reruns,
                ruff=ruff,
                isolated=not settings.execution.unsandboxed,
            )
            notes = generated.notes
            if store is not None and (problem := remember(store, generated)) is not None:
                notes += (problem,)
            return _Outcome(
                generated,
                real.root,
                generated.layout.test_file.relative_to(copy).as_posix(),
                notes,
                bug_findings(snapshot, generated.funnel.possible_bugs),
            )

    # -- after the run: bugs, delivery, summary -----------------------------------------

    async def _finish(
        self, snapshot: Snapshot, folder_root: Path, names: str, outcome: _Outcome
    ) -> dict[str, Any]:
        generated = outcome.generated
        root = outcome.root
        symbols = frozenset(s.name for s in generated.target.symbols)
        self._show_bugs(snapshot, symbols, outcome, root)
        test_path = root / outcome.test_relpath
        delivered = None
        if generated.funnel.kept:
            delivered = await self._place(
                folder_root, root, test_path, generated.funnel.kept, f"Gantry: tests for {names}"
            )
        report = generated.funnel.report
        counts = ", ".join(f"{report.count(stage)} {stage}" for stage, _ in report.stages)
        bugs = len(generated.funnel.possible_bugs)
        where = os.path.relpath(test_path, folder_root)
        kept = len(generated.funnel.kept)
        if kept and delivered is None:
            head = f"{kept} test(s) for {names} were kept but could not be delivered to {where}"
        elif kept:
            head = f"{kept} test(s) for {names} added to {where}"
        else:
            head = f"no test for {names} was kept"
        message = f"{head} (funnel: {counts}"
        message += f"; {bugs} possible bug(s) shown as diagnostics)" if bugs else ")"
        if outcome.notes:
            message += ". " + "; ".join(outcome.notes)
        kind = types.MessageType.Warning if kept and delivered is None else types.MessageType.Info
        return self._tell(
            "done",
            message,
            kind,
            kept=kept,
            possibleBugs=bugs,
            testFile=test_path.as_uri(),
            delivered=delivered,
            funnel={stage: report.count(stage) for stage, _ in report.stages},
        )

    def _show_bugs(
        self, snapshot: Snapshot, names: frozenset[str], outcome: _Outcome, root: Path
    ) -> None:
        """This run's possible bugs, with those of earlier runs for other symbols that were
        found on the same text."""
        shown: dict[str, _Bug] = {}
        before = self._bugs.get(snapshot.uri)
        if before is not None and before[0].text == snapshot.text:
            shown = {f: b for f, b in before[1].items() if not b.symbols & names}
        for bug, finding in outcome.bugs:
            shown[finding.fingerprint] = _Bug(bug, finding, names, root, outcome.test_relpath)
        self._bugs[snapshot.uri] = (snapshot, shown)
        self._publisher.put(SOURCE, snapshot, tuple(b.finding for b in shown.values()))

    async def add_expected_failure(self, uri: str, fingerprint: str) -> dict[str, Any]:
        """The possible bug's test, marked xfail(strict=True), placed like the kept tests."""
        shown = self._bugs.get(uri, (None, {}))[1].get(fingerprint)
        if shown is None:
            raise Refused("that possible bug is no longer shown; generate the tests again")
        folder = self._folders.for_uri(uri)
        if folder.root is None:
            raise Refused("the file is outside every workspace folder")
        test_path = shown.root / shown.test_relpath
        name = shown.bug.candidate.name
        where = os.path.relpath(test_path, folder.root)
        xfail = as_expected_failure(shown.bug)
        existing, _ = await self._text_of(test_path)
        if existing is not None and await self._executors.review.run(has_test, existing, xfail):
            return self._tell(
                "already-there", f"{name} is in {where} already", types.MessageType.Info
            )
        delivered = await self._place(
            folder.root, shown.root, test_path, (xfail,), "Gantry: add an expected-failure test"
        )
        if delivered is None:
            return self._tell("not-delivered", f"{name} could not be added to {where}")
        return self._tell(
            "done",
            f"{name} added to {where} as an expected failure",
            types.MessageType.Info,
            testFile=test_path.as_uri(),
            delivered=delivered,
        )

    async def _text_of(self, path: Path) -> tuple[str | None, int | None]:
        """The file's text as the editor has it (open, with its version), else on disk; None
        if there is none."""
        document = self._server.workspace.text_documents.get(path.as_uri())
        if document is not None:
            return document.source, document.version
        return await self._executors.review.run(read_if_there, path), None

    # -- delivery -----------------------------------------------------------------------

    async def _place(
        self, folder_root: Path, root: Path, path: Path, tests: Sequence[Candidate], label: str
    ) -> str | None:
        """Merge ``tests`` into the test file as it is now (the user may have typed in it
        while they ran) and deliver the result; as ``_deliver`` says."""
        before, version = await self._text_of(path)
        settings = self._folders.for_uri(path.as_uri()).settings
        try:
            text = await self._executors.review.run(
                merged_text, root, path, tests, before, settings
            )
        except SyntaxError as exc:
            self._notify_user(f"{path.name} does not parse ({exc}): the tests were not added")
            return None
        return await self._deliver(folder_root, path, text, label, before, version)

    async def _deliver(
        self,
        folder_root: Path,
        path: Path,
        text: str,
        label: str,
        before: str | None,
        version: int | None,
    ) -> str | None:
        """Turn the test file at ``path`` from ``before`` (None: there is none; ``version``:
        the editor's, when it is open) into ``text``: "edit" when the client applied it (and,
        for a file it left off the disk, the server wrote it too), "written" when the server
        wrote it alone, None when neither could be done (nor is a file open in the editor
        written when the editor refused the edit). Then shown in the editor."""
        uri = path.as_uri()
        was_open = version is not None
        delivered = None
        if await self._apply(path, text, before, version, label):
            delivered = "edit"
            if (not was_open or before is None) and await self._executors.review.run(
                read_if_there, path
            ) != text:
                # Neovim keeps a created or loaded file as an unsaved buffer; the run's tests
                # belong on disk, and nothing of the user's is in that buffer to lose.
                delivered = "edit" if await self._write(folder_root, path, text) else None
        elif not was_open and await self._write(folder_root, path, text):
            # Not for a file open in the editor: its buffer is the user's, and may differ.
            delivered = "written"
        if delivered is not None and self._caps().show_document:
            try:
                await asyncio.wait_for(
                    self._server.window_show_document_async(
                        types.ShowDocumentParams(uri=uri, take_focus=True)
                    ),
                    _CLIENT_WAIT_S,
                )
            except Exception as exc:  # not shown: the message says where the tests are
                log.info("window/showDocument failed: %s", exc)
        return delivered

    async def _apply(
        self, path: Path, text: str, before: str | None, version: int | None, label: str
    ) -> bool:
        caps = self._caps()
        uri = path.as_uri()
        if not caps.apply_edit:
            return False
        if before is None:
            if not (caps.create_files and caps.document_changes):
                return False
            edit = types.WorkspaceEdit(
                document_changes=[
                    types.CreateFile(
                        uri=uri, options=types.CreateFileOptions(ignore_if_exists=True)
                    ),
                    types.TextDocumentEdit(
                        text_document=types.OptionalVersionedTextDocumentIdentifier(
                            uri=uri, version=None
                        ),
                        edits=[
                            types.TextEdit(
                                range=types.Range(
                                    start=types.Position(line=0, character=0),
                                    end=types.Position(line=0, character=0),
                                ),
                                new_text=text,
                            )
                        ],
                    ),
                ]
            )
        else:
            settings = self._folders.for_uri(uri).settings
            current = Snapshot(uri, str(path), version, before, "python", settings)
            edit = workspace_edit(
                caps,
                self._server.workspace.position_codec,
                current,
                [replacement_edit(before, text)],
            )
        try:
            result = await asyncio.wait_for(
                self._server.workspace_apply_edit_async(
                    types.ApplyWorkspaceEditParams(edit=edit, label=label)
                ),
                _CLIENT_WAIT_S,
            )
        except Exception as exc:  # unanswered or an error: not applied
            log.info("workspace/applyEdit failed: %s", exc)
            return False
        if not result.applied:
            log.info("the client refused the tests' edit: %s", result.failure_reason)
        return bool(result.applied)

    async def _write(self, folder_root: Path, path: Path, text: str) -> bool:
        try:
            await self._pool.run(write_inside, folder_root, path, text)
        except OSError as exc:
            self._notify_user(f"the tests could not be written to {path}: {exc}")
            return False
        return True

    def _tell(
        self, outcome: str, message: str, kind=types.MessageType.Warning, **data: Any
    ) -> dict[str, Any]:
        self._notify_user(message, kind)
        return {"outcome": outcome, "message": message, **data}


def _symbols(
    text: str, symbol: str | None, lines: tuple[int, int] | None
) -> tuple[targets.Symbol, ...]:
    """What a request names: a symbol (a method stands for its class), or what the lines
    touch. Refused when that is nothing."""
    try:
        if symbol is not None:
            top = symbol.split(".")[0]
            found = tuple(s for s in targets.public_symbols(text) if s.name == top)
        else:
            assert lines is not None
            found = targets.symbols_in_lines(text, *lines)
    except (SyntaxError, ValueError) as exc:
        raise Refused(f"the module does not parse: {exc}") from None
    if found:
        return found
    if symbol is not None:
        raise Refused(f"no public top-level function or class {symbol.split('.')[0]!r}")
    raise Refused("no public function, method or class there")


def bug_findings(
    snapshot: Snapshot, bugs: tuple[PossibleBug, ...]
) -> tuple[tuple[PossibleBug, Finding], ...]:
    """Each possible bug as a finding on the line of the function or class its test calls
    (the first public one, when it names none), with the failing assertion and the input."""
    lines = snapshot.lines
    defs = {s.name: s.line for s in targets.public_symbols(snapshot.text)}
    out = []
    for bug in bugs:
        candidate = bug.candidate
        named = [n for n in defs if f"{n}(" in candidate.source] or list(defs)
        line = defs[named[0]] - 1 if named else 0
        text = lines[line].rstrip("\r\n") if line < len(lines) else ""
        start = len(text) - len(text.lstrip())
        digest = hashlib.sha256(f"{snapshot.uri}\0{candidate.source}".encode()).hexdigest()
        message = (
            f"Possible bug: {candidate.name} ({candidate.engine}) fails against the current "
            f"code: {bug.assertion}"
        )
        if bug.input:
            message += f"\nInput: {bug.input}"
        finding = Finding(
            RULE,
            message,
            "warning",
            (line, start),
            (line, len(text)),
            Provenance(SOURCE, version=candidate.engine),
            fingerprint=f"tests:{digest[:24]}",
        )
        out.append((bug, finding))
    return tuple(out)


def _job_prefix(uri: str) -> str:
    return f"testgen:{hashlib.sha256(uri.encode()).hexdigest()[:16]}:"
