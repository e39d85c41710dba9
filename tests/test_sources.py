"""Diagnostics by source and named executors, end to end over stdio: a deliberately slow engine
(whose pace the test sets) never delays, hides or erases ruff's findings, and its results are
never shown on newer text; with every background and remote worker held busy, an edit still
gets its ruff diagnostics."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from lsp_harness import change_document, diagnostics_for, initialize, make_client, open_document
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

CUSTOM_SERVER = Path(__file__).parent / "servers" / "custom_server.py"
SOURCE = "import os\n"


def _config(*args: str) -> ClientServerConfig:
    return ClientServerConfig(
        server_command=[sys.executable, "-P", str(CUSTOM_SERVER), *args],
        client_factory=make_client,
    )


async def _start(
    config: ClientServerConfig, root: Path, editor: str, options: dict | None = None
) -> LanguageClient:
    client = await config.start()
    await initialize(client, root, editor, options)
    return client


async def _stop(client: LanguageClient) -> None:
    try:
        await asyncio.wait_for(client.shutdown_session(), 30)
    finally:
        await asyncio.wait_for(client.stop(), 30)


def _codes(diagnostics: list[types.Diagnostic]) -> set[str]:
    return {str(d.code) for d in diagnostics}


async def _until(client: LanguageClient, uri: str, version: int, codes: set[str]) -> None:
    async def wait() -> None:
        while not (
            client.diagnostic_versions.get(uri) == version
            and _codes(client.diagnostics[uri]) == codes
        ):
            await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)

    await asyncio.wait_for(wait(), 30)


@pytest.mark.parametrize("editor", ["visual-studio-code", "neovim"])
async def test_a_slow_source_never_delays_hides_or_erases_a_fast_one(tmp_path: Path, editor):
    ws, gates = tmp_path / "ws", tmp_path / "gates"
    ws.mkdir()
    gates.mkdir()
    (ws / "pyproject.toml").write_text('[tool.ruff.lint]\nselect = ["F"]\n')
    (ws / "app.py").write_text(SOURCE)
    client = await _start(_config("--gated-engine", str(gates)), ws, editor)
    try:
        uri = open_document(client, ws / "app.py")
        # Ruff's findings arrive while the gated engine is still held on version 1.
        assert _codes(await diagnostics_for(client, uri, 1)) == {"F401"}
        (gates / "app.py-1").touch()
        await _until(client, uri, 1, {"F401", "GATED1"})

        # Version 2 while the gated engine holds: ruff's v2 findings are published alone,
        # the gated v1 finding is not carried onto the new text.
        change_document(client, uri, 2, "import os\nimport sys\n")
        await _until(client, uri, 2, {"F401"})
        assert len(client.diagnostics[uri]) == 2

        # Version 3 at once; then the gated engine may finish v2: its result is for older text
        # and must never be shown on version 3.
        change_document(client, uri, 3, "import sys\n")
        await _until(client, uri, 3, {"F401"})
        (gates / "app.py-2").touch()
        (gates / "app.py-3").touch()
        await _until(client, uri, 3, {"F401", "GATED1"})
        gated = [d for d in client.diagnostics[uri] if d.code == "GATED1"]
        assert [d.message for d in gated] == ["gated finding on version 3"]

        # Ruff republishing (a new version) keeps the union for that version only.
        change_document(client, uri, 4, "import sys\n")
        (gates / "app.py-4").touch()
        await _until(client, uri, 4, {"F401", "GATED1"})
        assert [d.source for d in client.diagnostics[uri] if d.code == "F401"] == ["gantry"]
    finally:
        await _stop(client)


@pytest.mark.parametrize("editor", ["visual-studio-code", "neovim"])
async def test_edits_get_ruff_diagnostics_while_background_and_remote_workers_are_busy(
    tmp_path: Path, editor
):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "pyproject.toml").write_text('[tool.ruff.lint]\nselect = ["F"]\n')
    (ws / "app.py").write_text(SOURCE)
    # Indexing off: it could not finish with its pool held, and shutdown would wait for it.
    client = await _start(_config("--block-pools"), ws, editor, {"index": {"enabled": False}})
    try:
        uri = open_document(client, ws / "app.py")
        assert _codes(await diagnostics_for(client, uri, 1)) == {"F401"}
        change_document(client, uri, 2, "import os\nimport sys\nsys\n")
        assert _codes(await diagnostics_for(client, uri, 2)) == {"F401"}
        change_document(client, uri, 3, "import os\nimport sys\nundefined_name\n")
        assert _codes(await diagnostics_for(client, uri, 3)) == {"F401", "F821"}
    finally:
        await _stop(client)
