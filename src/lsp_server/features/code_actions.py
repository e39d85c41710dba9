"""Quick fixes, dismissals and `source.fixAll.gantry`.

Actions are listed cheaply; their edits are computed in `codeAction/resolve` when the client
supports resolving `edit`, and eagerly otherwise. Findings are found again by fingerprint, which
survives edits, so a resolve after unrelated typing still targets the right code.
"""

from __future__ import annotations

from pathlib import Path

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from lsp_server.contract import data as diagnostic_data
from lsp_server.contract.commands import (
    DismissArgs,
    ExpectedFailureArgs,
    GenerateTestsArgs,
    VerifyFixArgs,
)
from lsp_server.contract.converter import ContractError, structure, unstructure
from lsp_server.convert import replacement_edit, workspace_edit
from lsp_server.executors import Pool
from lsp_server.review import ruff_engine
from lsp_server.review.findings import Edit, Finding, Snapshot
from lsp_server.session import Session
from lsp_server.testgen.targets import symbols_in_lines

FIX_ALL = "source.fixAll.gantry"
GENERATE_TESTS = "refactor.gantry.generateTests"
QUICKFIX = types.CodeActionKind.QuickFix.value
VERIFY_TITLE = "Gantry: Apply and verify (run the tests that cover it)"


@attrs.frozen
class ActionData:
    """What a listed action carries to its resolve."""

    uri: str
    fingerprint: str | None = None
    """None for fix-all."""


def _wanted(kind: str, only: list[str] | None) -> bool:
    return not only or any(kind == o or kind.startswith(o + ".") for o in only)


def _fingerprint(diagnostic: types.Diagnostic) -> str | None:
    data = diagnostic_data.read(diagnostic.data)
    return data.fingerprint if data is not None else None


def _match(diagnostic: types.Diagnostic, findings: tuple[Finding, ...]) -> Finding | None:
    """The finding behind a diagnostic: by fingerprint, or by rule and start line for clients
    that do not send `data` back."""
    fingerprint = _fingerprint(diagnostic)
    for finding in findings:
        if fingerprint is not None:
            if finding.fingerprint == fingerprint:
                return finding
        elif finding.rule == diagnostic.code and finding.start[0] == diagnostic.range.start.line:
            return finding
    return None


def _dismiss_action(finding: Finding, uri: str, verdict: str, title: str, diag) -> types.CodeAction:
    return types.CodeAction(
        title=title,
        kind=QUICKFIX,
        diagnostics=[diag],
        command=types.Command(
            title=title,
            command="gantry.dismissFinding",
            arguments=[unstructure(DismissArgs(uri, finding.fingerprint, verdict))],
        ),
    )


def _verify_action(
    session: Session, snapshot: Snapshot, finding: Finding, diag
) -> types.CodeAction:
    """The command applies the fix itself through workspace/applyEdit; a client that cannot
    be asked to gets the edit in the action too, which it applies before running the command."""
    args = VerifyFixArgs(snapshot.uri, finding.fingerprint)
    carry_edit = not session.caps.apply_edit
    if carry_edit:
        session.verifier.remember(snapshot, finding)
    return types.CodeAction(
        title=VERIFY_TITLE,
        kind=QUICKFIX,
        diagnostics=[diag],
        command=types.Command(
            title=VERIFY_TITLE, command="gantry.verifyFix", arguments=[unstructure(args)]
        ),
        data=unstructure(ActionData(snapshot.uri, finding.fingerprint)) if carry_edit else None,
    )


def _expected_failure_action(uri: str, finding: Finding, diag) -> types.CodeAction:
    title = "Gantry: add as expected-failure test"
    return types.CodeAction(
        title=title,
        kind=QUICKFIX,
        diagnostics=[diag],
        command=types.Command(
            title=title,
            command="gantry.addExpectedFailure",
            arguments=[unstructure(ExpectedFailureArgs(uri, finding.fingerprint))],
        ),
    )


def _touched(text: str, first: int, last: int) -> tuple[str, ...]:
    try:
        return tuple(s.name for s in symbols_in_lines(text, first, last))
    except (SyntaxError, ValueError):
        return ()


async def _generate_tests_action(
    session: Session, uri: str, selection: types.Range
) -> types.CodeAction | None:
    """ "Generate tests for selection": offered for a selection (not a bare cursor: the code
    lens is there) that touches a public function, method or class."""
    if selection.start == selection.end:
        return None
    snapshot = session.snapshot(uri)
    if snapshot is None or snapshot.language != "python":
        return None
    start, end = selection.start, selection.end
    last = end.line - 1 if end.character == 0 and end.line > start.line else end.line
    names = await session.executors.review.run(_touched, snapshot.text, start.line + 1, last + 1)
    if not names:
        return None
    title = f"Gantry: generate tests for selection ({', '.join(names)})"
    span = diagnostic_data.Range(
        diagnostic_data.Position(start.line, start.character),
        diagnostic_data.Position(end.line, end.character),
    )
    return types.CodeAction(
        title=title,
        kind=GENERATE_TESTS,
        command=types.Command(
            title=title,
            command="gantry.generateTests",
            arguments=[unstructure(GenerateTestsArgs(uri, range=span))],
        ),
    )


def _fix_title(finding: Finding) -> str:
    fix = finding.fix
    assert fix is not None
    suffix = " (unsafe fix: check the result)" if fix.applicability == "unsafe" else ""
    return f"Gantry: {fix.message} ({finding.rule}){suffix}"


async def _fix_all_edits(pool: Pool, snapshot: Snapshot, root: Path | None) -> list[Edit]:
    # From the project root, as diagnostics run: the same configuration, the same import order.
    fixed = await pool.run(ruff_engine.fix_all, snapshot, root=root)
    return [] if fixed == snapshot.text else [replacement_edit(snapshot.text, fixed)]


def register(server: LanguageServer, session: Session) -> None:
    async def edit_for(ls: LanguageServer, data: ActionData) -> types.WorkspaceEdit | None:
        if data.fingerprint is None:
            snapshot = session.snapshot(data.uri)
            if snapshot is None or snapshot.language != "python":
                return None
            root = session.folders.for_uri(data.uri).root
            edits = await _fix_all_edits(session.executors.review, snapshot, root)
        else:
            shown = session.publisher.shown(data.uri)
            current = session.snapshot(data.uri)
            if shown is None or current is None or current.version != shown.snapshot.version:
                return None  # the text moved on: fresh diagnostics and actions are on their way
            snapshot = shown.snapshot
            finding = next((f for f in shown.findings if f.fingerprint == data.fingerprint), None)
            if finding is None or finding.fix is None:
                return None
            edits = list(finding.fix.edits)
        if not edits:
            return None
        return workspace_edit(session.caps, ls.workspace.position_codec, snapshot, edits)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[QUICKFIX, FIX_ALL, GENERATE_TESTS], resolve_provider=True
        ),
    )
    async def code_action(
        ls: LanguageServer, params: types.CodeActionParams
    ) -> list[types.CodeAction] | None:
        uri = params.text_document.uri
        only = params.context.only
        generate = None
        if _wanted(GENERATE_TESTS, only):
            generate = await _generate_tests_action(session, uri, params.range)
        shown = session.publisher.shown(uri)
        if shown is None:
            return [generate] if generate is not None else None
        findings = shown.findings
        actions: list[types.CodeAction] = []
        if _wanted(QUICKFIX, only):
            for diag in params.context.diagnostics:
                if (
                    not (diag.source or "").startswith("gantry")
                    or (finding := _match(diag, findings)) is None
                ):
                    continue
                if finding.fix is not None:
                    actions.append(
                        types.CodeAction(
                            title=_fix_title(finding),
                            kind=QUICKFIX,
                            diagnostics=[diag],
                            is_preferred=finding.fix.applicability == "safe",
                            data=unstructure(ActionData(uri, finding.fingerprint)),
                        )
                    )
                    if session.verifier.verifiable(finding, shown.snapshot):
                        actions.append(_verify_action(session, shown.snapshot, finding, diag))
                if finding.provenance.engine == "tests":
                    actions.append(_expected_failure_action(uri, finding, diag))
                actions.append(
                    _dismiss_action(
                        finding, uri, "dismissed", f"Gantry: dismiss {finding.rule} here", diag
                    )
                )
                actions.append(
                    _dismiss_action(
                        finding,
                        uri,
                        "false_positive",
                        f"Gantry: mark {finding.rule} here as a false positive",
                        diag,
                    )
                )
        # Fix-all only when asked for by kind, or when something in the file is fixable.
        asked = bool(only) and _wanted(FIX_ALL, only)
        fixable = any(f.fix is not None and f.fix.applicability == "safe" for f in findings)
        if asked or (not only and fixable):
            actions.append(
                types.CodeAction(
                    title="Gantry: fix all safely fixable problems",
                    kind=FIX_ALL,
                    data=unstructure(ActionData(uri)),
                )
            )
        if generate is not None:
            actions.append(generate)
        if not session.caps.resolve_edits:
            for action in actions:
                if action.data is not None:
                    action.edit = await edit_for(ls, structure(action.data, ActionData))
                    action.data = None
        return actions

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def resolve(ls: LanguageServer, action: types.CodeAction) -> types.CodeAction:
        if action.data is None:
            return action
        try:
            data = structure(action.data, ActionData)
        except ContractError as exc:
            raise JsonRpcInvalidParams(
                f"code action data is not Gantry's: {action.data!r}"
            ) from exc
        action.edit = await edit_for(ls, data)
        return action
