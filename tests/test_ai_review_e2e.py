"""AI review end to end over stdio, against the scripted Messages-API server on loopback: on
save the model's findings arrive beside ruff's (source "gantry-ai") with provenance and a
validated fix; unchanged code is never sent twice, across a restart; a bad answer is retried
and never half-used; a hover tells where a finding came from; with the endpoint down, reviews
wait in the queue and publish on the text as it is when they complete."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import pytest
from ai_fixtures import AVERAGE, division_bug
from fake_messages_api import FakeMessagesAPI, text, tool_use
from lsp_harness import (
    CLIENTS,
    SERVER,
    change_document,
    diagnostics_for,
    initialize,
    open_document,
)
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

SOURCE = AVERAGE
BUG = division_bug()


def _options(api: FakeMessagesAPI) -> dict:
    endpoint = {"name": "gpu-box", "base_url": api.url, "model": "review-model"}
    return {"inference": {"endpoints": [endpoint]}, "index": {"enabled": True}}


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "pyproject.toml").write_text('[tool.ruff.lint]\nselect = ["F"]\n')
    (ws / "stats.py").write_text(SOURCE)
    return ws


async def _session(ws: Path, api: FakeMessagesAPI, editor: str) -> LanguageClient:
    client = await SERVER.start()
    await asyncio.wait_for(initialize(client, ws, editor, _options(api)), 30)
    return client


async def _close(client: LanguageClient) -> None:
    try:
        await asyncio.wait_for(client.shutdown_session(), 30)
    finally:
        await asyncio.wait_for(client.stop(), 30)


def _save(client: LanguageClient, uri: str) -> None:
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )


async def _ai(client: LanguageClient, uri: str, timeout: float = 60) -> list[types.Diagnostic]:
    async def wait() -> list[types.Diagnostic]:
        while True:
            found = [d for d in client.diagnostics.get(uri, []) if d.source == "gantry-ai"]
            if found:
                return found
            await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)

    return await asyncio.wait_for(wait(), timeout)


@pytest.mark.parametrize("editor", CLIENTS)
async def test_save_asks_the_model_once_and_the_cache_answers_after(
    tmp_path: Path, api: FakeMessagesAPI, editor: str
):
    ws = _workspace(tmp_path)
    api.script(text("no tool call: a bad answer"), tool_use("report_findings", {"findings": [BUG]}))
    client = await _session(ws, api, editor)
    try:
        uri = open_document(client, ws / "stats.py")
        await diagnostics_for(client, uri, 1)
        assert not api.requests  # opening looks in the cache only
        _save(client, uri)
        (finding,) = await _ai(client, uri)
        assert finding.message.startswith("Division by zero when values is empty")
        assert finding.code == "bug" and finding.severity == types.DiagnosticSeverity.Warning
        assert finding.range.start.line == 4
        provenance = finding.data["provenance"]
        assert provenance["engine"] == "ai" and provenance["model"] == "review-model"
        assert provenance["endpoint"] == "gpu-box" and provenance["cached"] is False
        assert provenance["promptVersion"]
        # The bad answer was retried, not used; the code sits in a delimited block.
        assert len(api.requests) == 2
        sent = str(api.requests[-1].body["messages"])
        assert "return total / len(values)" in sent

        # The fix was validated before it is offered; applying it is the user's choice.
        actions = await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=finding.range,
                context=types.CodeActionContext(diagnostics=[finding]),
            )
        )
        titles = [a.title for a in actions if isinstance(a, types.CodeAction)]
        assert any("Apply the suggested fix" in title for title in titles), titles

        # Saving unchanged code sends nothing.
        _save(client, uri)
        await asyncio.sleep(0)  # let the save be handled
        assert (await _ai(client, uri))[0].data["provenance"]["cached"] is False
        assert len(api.requests) == 2
    finally:
        await _close(client)

    # A new session: the finding comes back from the cache, with no request at all.
    client = await _session(ws, api, editor)
    try:
        uri = open_document(client, ws / "stats.py")
        (finding,) = await _ai(client, uri)
        assert finding.data["provenance"]["cached"] is True
        _save(client, uri)
        await diagnostics_for(client, uri, 1)
        assert len(api.requests) == 2
    finally:
        await _close(client)


async def test_review_paths_with_ai_answers_once_every_ai_finding_is_published(
    tmp_path: Path, api: FakeMessagesAPI
):
    """What `gantry check --ai` asks: files on disk, reviewed by ruff and the model, published
    before the command answers; a second run on unchanged code sends nothing."""
    ws = _workspace(tmp_path)
    api.script(tool_use("report_findings", {"findings": [BUG]}))
    client = await _session(ws, api, "neovim")
    try:
        uri = (ws / "stats.py").as_uri()
        for _ in range(2):
            client.diagnostics.pop(uri, None)
            answer = await asyncio.wait_for(
                client.workspace_execute_command_async(
                    types.ExecuteCommandParams(
                        command="gantry.reviewPaths", arguments=[{"paths": ["."], "ai": True}]
                    )
                ),
                60,
            )
            assert answer["files"] == [str(ws / "stats.py")]
            sources = sorted(d.source for d in client.diagnostics[uri])
            assert sources == ["gantry-ai"]
            assert len(api.requests) == 1
    finally:
        await _close(client)


# -- hover --------------------------------------------------------------------------------

WITH_LOCAL = """\
def average(values):
    unused = 1
    total = 0
    for value in values:
        total += value
    return total / len(values)
"""
HOVER_BUG = {**BUG, "start_line": 6, "end_line": 6}


def _capabilities(variant: str) -> types.ClientCapabilities:
    """An editor's capability snapshot, or ("plaintext") Neovim's with hover in plain text."""
    if variant != "plaintext":
        return client_capabilities(variant)
    caps = client_capabilities("neovim")
    caps.text_document.hover.content_format = [types.MarkupKind.PlainText]
    return caps


def _hover(client: LanguageClient, uri: str, at: types.Position):
    return asyncio.wait_for(
        client.text_document_hover_async(
            types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=at)
        ),
        30,
    )


@pytest.mark.parametrize(
    ("variant", "kind"),
    [*((editor, types.MarkupKind.Markdown) for editor in CLIENTS), ("plaintext", "plaintext")],
)
async def test_hover_over_an_ai_finding_shows_its_provenance_and_rationale(
    tmp_path: Path, api: FakeMessagesAPI, variant: str, kind: str
):
    ws = _workspace(tmp_path)
    (ws / "stats.py").write_text(WITH_LOCAL)
    api.script(tool_use("report_findings", {"findings": [HOVER_BUG]}))
    client = await SERVER.start()
    try:
        await asyncio.wait_for(
            client.initialize_session(
                types.InitializeParams(
                    capabilities=_capabilities(variant),
                    root_uri=ws.as_uri(),
                    workspace_folders=[types.WorkspaceFolder(uri=ws.as_uri(), name=ws.name)],
                    initialization_options=_options(api),
                )
            ),
            30,
        )
        uri = open_document(client, ws / "stats.py")
        (local,) = await diagnostics_for(client, uri, 1)
        assert local.code == "F841"
        _save(client, uri)
        (finding,) = await _ai(client, uri)
        provenance = finding.data["provenance"]

        hover = await _hover(client, uri, finding.range.start)
        assert hover is not None and hover.contents.kind == kind
        assert hover.range == finding.range
        shown = hover.contents.value
        # Markdown escapes the model's words (they must not render as links, images or HTML).
        read = re.sub(r"\\(.)", r"\1", shown) if kind == "markdown" else shown
        if kind == "markdown":
            assert "len\\(values\\)" in shown
        for fact in (
            "Division by zero when values is empty",
            "len(values) is 0 for an empty list.",  # the rationale
            "Model: review-model at endpoint gpu-box",
            f"Prompt version: {provenance['promptVersion']}",
            "Answer: fresh, answered ",
            f"Context: {', '.join(provenance.get('context', [])) or 'none'}",
            f"Tokens: {provenance['tokens']}",
            "Fix: a checked fix is offered",
        ):
            assert fact in read, (fact, shown)

        # Ruff's finding: its rule, message and link are in the editor's own diagnostic hover.
        assert await _hover(client, uri, local.range.start) is None
        # Nothing over code without a finding.
        assert await _hover(client, uri, types.Position(line=0, character=0)) is None
    finally:
        await _close(client)


# -- degraded mode: the endpoint is down, reviews wait in the queue --------------------------


def _closed_port() -> int:
    """A loopback port nothing listens on (yet): the endpoint is down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _down_options(port: int) -> dict:
    endpoint = {"name": "gpu-box", "base_url": f"http://127.0.0.1:{port}", "model": "review-model"}
    return {"inference": {"endpoints": [endpoint]}, "index": {"enabled": True}}


async def _status_says(client: LanguageClient, text: str, timeout: float = 60) -> None:
    async def wait() -> None:
        while not (client.statuses and text in client.statuses[-1].message):
            await client.wait_for_notification("gantry/status")

    await asyncio.wait_for(wait(), timeout)


async def _queued_while_down(tmp_path: Path) -> tuple[LanguageClient, Path, str, int]:
    """A session whose endpoint is down, stats.py (with a ruff finding) saved: the local
    findings are shown at once and the AI review waits in the queue."""
    ws = _workspace(tmp_path)
    (ws / "stats.py").write_text(WITH_LOCAL)
    port = _closed_port()
    client = await SERVER.start()
    await asyncio.wait_for(initialize(client, ws, "neovim", _down_options(port)), 30)
    uri = open_document(client, ws / "stats.py")
    (local,) = await diagnostics_for(client, uri, 1)
    assert local.code == "F841"
    _save(client, uri)
    await _status_says(client, "1 AI review queued")
    assert client.statuses[-1].state in ("queued", "degraded", "offline")
    assert [d.code for d in client.diagnostics[uri]] == ["F841"]  # still shown meanwhile
    return client, ws, uri, port


async def test_a_review_queued_while_the_endpoint_is_down_publishes_when_it_comes_up(
    tmp_path: Path,
):
    """... re-anchored by content on the text as it is then: lines added above the unit
    meanwhile move the finding, without another save."""
    client, _, uri, port = await _queued_while_down(tmp_path)
    try:
        change_document(client, uri, 2, "\n\n" + WITH_LOCAL)
        await diagnostics_for(client, uri, 2)
        with FakeMessagesAPI(port=port) as api:
            api.script(tool_use("report_findings", {"findings": [HOVER_BUG]}))
            # The dispatcher's probe finds the endpoint back (every 5 s: no setting shortens
            # it), the queue drains, the answer is published on version 2.
            (finding,) = await _ai(client, uri)
            assert client.diagnostic_versions[uri] == 2
            assert finding.range.start.line == 5 + 2
            assert finding.message.startswith("Division by zero")
            assert len(api.requests) == 1
            await _status_says(client, "Ready")
    finally:
        await _close(client)


async def test_a_queued_review_of_a_unit_changed_meanwhile_is_cancelled_and_never_shown(
    tmp_path: Path,
):
    client, _, uri, port = await _queued_while_down(tmp_path)
    try:
        changed = WITH_LOCAL.replace("len(values)", "max(len(values), 1)")
        change_document(client, uri, 2, changed)
        # The change supersedes the queued review: cancelled in the queue, not waited for.
        await _status_says(client, "Remote: remote down")
        await asyncio.wait_for(_until(lambda: "queued" not in client.statuses[-1].message), 30)
        with FakeMessagesAPI(port=port) as api:
            api.script(tool_use("report_findings", {"findings": []}))
            _save(client, uri)  # the new text is reviewed: "nothing found" is a good answer
            await asyncio.wait_for(_until(lambda: len(api.requests) == 1), 60)
            await _status_says(client, "Ready")
            sent = str(api.requests[0].body["messages"])
            assert "max(len(values), 1)" in sent  # only the new text was ever sent
            assert not [d for d in client.diagnostics[uri] if d.source == "gantry-ai"]
            assert client.diagnostic_versions[uri] == 2
    finally:
        await _close(client)


async def _until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.05)


# -- other languages ------------------------------------------------------------------------

TYPESCRIPT = """\
export function average(values: number[]): number {
  let total = 0;
  for (const v of values) total += v;
  return total / values.length;
}
"""
TS_BUG = {
    **BUG,
    "start_line": 4,
    "end_line": 4,
    "fix": {
        "search": "return total / values.length;",
        "replace": "return values.length ? total / values.length : 0;",
    },
}


@pytest.mark.parametrize("editor", CLIENTS)
async def test_a_typescript_file_is_reviewed_by_the_model_and_quietly_skipped_by_ruff(
    tmp_path: Path, api: FakeMessagesAPI, editor: str
):
    ws = _workspace(tmp_path)
    (ws / "stats.ts").write_text(TYPESCRIPT)
    api.script(tool_use("report_findings", {"findings": [TS_BUG]}))
    client = await _session(ws, api, editor)
    try:
        uri = (ws / "stats.ts").as_uri()
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="typescript", version=1, text=TYPESCRIPT
                )
            )
        )
        assert await diagnostics_for(client, uri, 1) == []  # ruff: nothing, and no complaint
        _save(client, uri)
        (finding,) = await _ai(client, uri)
        assert finding.range.start.line == 3 and finding.code == "bug"
        assert "return total / values.length;" in str(api.requests[0].body["messages"])
        actions = await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=finding.range,
                context=types.CodeActionContext(diagnostics=[finding]),
            )
        )
        titles = [a.title for a in actions if isinstance(a, types.CodeAction)]
        assert any("Apply the suggested fix" in title for title in titles), titles
        assert not [m for m in client.messages if "stats.ts" in m.message], client.messages
    finally:
        await _close(client)


async def test_an_applied_fix_is_an_accepted_verdict_summarised_into_later_prompts(
    tmp_path: Path, api: FakeMessagesAPI
):
    ws = _workspace(tmp_path)
    (ws / "pyproject.toml").write_text(
        '[tool.ruff.lint]\nselect = ["F"]\n\n[tool.gantry]\nstore = ".gantry/store.db"\n'
    )
    api.script(
        tool_use("report_findings", {"findings": [BUG]}),
        tool_use("report_findings", {"findings": []}),
    )
    client = await _session(ws, api, "visual-studio-code")
    try:
        uri = open_document(client, ws / "stats.py")
        _save(client, uri)
        (finding,) = await _ai(client, uri)
        fixed = SOURCE.replace(BUG["fix"]["search"], BUG["fix"]["replace"])
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=fixed)],
            )
        )

        async def accepted() -> bool:
            from lsp_server.store import Store

            with Store.open(ws / ".gantry" / "store.db") as store:
                verdicts = store.verdicts()
            verdict = verdicts.get(finding.data["fingerprint"])
            return verdict is not None and verdict.verdict == "accepted"

        async def poll() -> None:
            while not await accepted():
                await asyncio.sleep(0.2)

        await asyncio.wait_for(poll(), 30)
        _save(client, uri)  # the changed unit goes to the model, told what was accepted

        async def asked_again() -> None:
            while len(api.requests) < 2:
                await asyncio.sleep(0.1)

        await asyncio.wait_for(asked_again(), 30)
        prompt = str(api.requests[-1].body["messages"])
        assert "accepted (bug)" in prompt
    finally:
        await _close(client)
