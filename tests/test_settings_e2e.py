"""Settings, degradation, progress and file watching, end to end over stdio."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsp_harness import SERVER, diagnostics_for, idle, initialize, open_document, write_workspace
from lsprotocol import types
from pytest_lsp import LanguageClient

SOURCE = "import os\n\n\ndef f(items=[]):\n    return items\n"


async def _session(workspace: Path, options=None, configuration=None, editor="visual-studio-code"):
    client = await SERVER.start()
    if configuration is not None:
        client.set_configuration(configuration, section="gantry")
    await initialize(client, workspace, editor, options)
    return client


async def _close(client: LanguageClient) -> None:
    await client.shutdown_session()
    await client.stop()


async def test_editor_settings_override_the_project(tmp_path: Path):
    ws = write_workspace(
        tmp_path,
        {
            "pyproject.toml": '[tool.ruff.lint]\nselect = ["F"]\n[tool.gantry.severity]\nF401 = "hint"\n',
            "a.py": SOURCE,
        },
    )
    client = await _session(
        ws,
        options={"gantry": {"ruff": {"extendSelect": ["B"]}}},
        configuration={"severity": {"B006": "error"}},
    )
    try:
        uri = open_document(client, ws / "a.py")
        diagnostics = {d.code: d for d in await diagnostics_for(client, uri, 1)}
        assert diagnostics["F401"].severity == types.DiagnosticSeverity.Hint  # project
        assert diagnostics["B006"].severity == types.DiagnosticSeverity.Error  # editor
    finally:
        await _close(client)


async def test_invalid_settings_are_reported_and_defaulted(tmp_path: Path):
    ws = write_workspace(
        tmp_path, {"pyproject.toml": '[tool.ruff.lint]\nselect = ["F"]\n', "a.py": SOURCE}
    )
    client = await _session(ws, configuration={"maxFileSizeKb": "huge", "ruff": {"select": 7}})
    try:
        uri = open_document(client, ws / "a.py")
        assert [d.code for d in await diagnostics_for(client, uri, 1)] == ["F401"]
        messages = [m.message for m in client.messages]
        assert any("max_file_size_kb" in m and "default" in m for m in messages), messages
        assert any("ruff.select" in m for m in messages), messages
    finally:
        await _close(client)


async def test_missing_ruff_degrades_with_one_message(tmp_path: Path):
    ws = write_workspace(tmp_path, {"a.py": SOURCE, "b.py": SOURCE})
    client = await _session(ws, configuration={"ruff": {"path": str(tmp_path / "no-ruff-here")}})
    try:
        for name in ("a.py", "b.py"):
            uri = open_document(client, ws / name)
            assert await diagnostics_for(client, uri, 1) == []
        status = await idle(client)
        assert status.state == "degraded" and "ruff" in status.message
        assert sum("ruff" in m.message for m in client.messages) == 1
    finally:
        await _close(client)


async def test_configuration_change_is_applied(tmp_path: Path):
    ws = write_workspace(
        tmp_path, {"pyproject.toml": '[tool.ruff.lint]\nselect = ["F"]\n', "a.py": SOURCE}
    )
    client = await _session(ws, configuration={})
    try:
        uri = open_document(client, ws / "a.py")
        assert {d.code for d in await diagnostics_for(client, uri, 1)} == {"F401"}
        client.set_configuration({"ruff": {"extendSelect": ["B"]}}, section="gantry")
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))

        async def b006_arrives():
            while "B006" not in {d.code for d in client.diagnostics.get(uri, [])}:
                await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)

        await asyncio.wait_for(b006_arrives(), 30)
    finally:
        await _close(client)


async def test_indexing_reports_progress_and_watches_files(tmp_path: Path):
    files = {f"pkg/m{i}.py": f"def f{i}():\n    return {i}\n" for i in range(60)}
    ws = write_workspace(tmp_path, files)
    (ws / "pkg" / "latin1.py").write_bytes(b"name = '\xe9t\xe9'\n")
    client = await _session(ws)
    try:
        status = await idle(client)
        assert status.state == "ready"
        notes = [m.message for m in client.log_messages if "skipped" in m.message]
        assert notes == [f"Gantry: indexed 60 files in {ws.name}; skipped 1 (1 not UTF-8)"]
        assert client.progress_reports, "indexing should report $/progress"
        (kinds,) = {tuple(p.kind for p in reports) for reports in client.progress_reports.values()}
        assert kinds[0] == "begin" and kinds[-1] == "end"
        assert any(
            r.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES for r in client.registrations
        )
    finally:
        await _close(client)
