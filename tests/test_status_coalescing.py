"""`gantry/status` over a check-like session: a burst of reviews sends a few statuses, not
several per file, and the last one is the true idle state."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest_lsp
from lsp_harness import SERVER, diagnostics_for, initialize, open_document, write_workspace
from pytest_lsp import LanguageClient

FILES = 200


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


async def test_two_hundred_files_send_few_statuses_and_end_ready(
    client: LanguageClient, tmp_path: Path
):
    # Each file has `n % 3` unused imports: the total says whether every review was counted.
    files = {
        f"pkg/mod_{n}.py": "".join(f"import m{k}\n" for k in range(n % 3)) + "VALUE = 1\n"
        for n in range(FILES)
    }
    ws = write_workspace(
        tmp_path / "ws", {"pyproject.toml": '[tool.ruff.lint]\nselect = ["F"]\n', **files}
    )
    await initialize(client, ws)
    uris = [open_document(client, ws / name) for name in files]
    published = [await diagnostics_for(client, uri, 1, timeout=60) for uri in uris]
    findings = sum(map(len, published))
    assert findings == sum(n % 3 for n in range(FILES))

    async def settled() -> None:
        while not client.statuses or (
            client.statuses[-1].state != "ready" or client.statuses[-1].counts.findings != findings
        ):
            await client.wait_for_notification("gantry/status")

    await asyncio.wait_for(settled(), 30)
    # It was 2.8 per file, each review saying "busy" and then "ready".
    assert len(client.statuses) < FILES, len(client.statuses)
