"""Multi-root workspaces end to end over stdio, as VS Code and Neovim drive them: each folder
has its own settings, store and verdicts; a document belongs to the innermost folder containing
it; a file outside every folder gets defaults and no store; folders come and go at run time."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import pytest_lsp
from lsp_harness import CLIENTS, SERVER, change_document, diagnostics_for, open_document
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

SOURCE = "import os\nx = None\nif x == None:\n    pass\n"
STRICT = '[tool.ruff.lint]\nselect = ["F"]\n\n[tool.gantry]\nstore = ".gantry/store.db"\n\n[tool.gantry.severity]\nF401 = "error"\n'
STYLE = (
    '[tool.ruff.lint]\nselect = ["E"]\n\n[tool.gantry]\nstore = ".gantry/store.db"\n\n'
    '[tool.gantry.severity]\nE711 = "error"\n'
)
ERROR, WARNING, INFO = (types.DiagnosticSeverity(n) for n in (1, 2, 3))
NO_INDEX = {"index": {"enabled": False}}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """a/ (F, F401 an error), a/inner/ (E: its own project), b/ (E), outside/ (no project)."""
    for folder, pyproject in (("a", STRICT), ("a/inner", STYLE), ("b", STYLE), ("outside", None)):
        (tmp_path / folder).mkdir(parents=True)
        if pyproject:
            (tmp_path / folder / "pyproject.toml").write_text(pyproject)
        (tmp_path / folder / "mod.py").write_text(SOURCE)
    return tmp_path


async def _initialize(client: LanguageClient, editor: str, *folders: Path) -> None:
    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(editor),
            root_uri=folders[0].as_uri() if folders else None,
            workspace_folders=[types.WorkspaceFolder(uri=f.as_uri(), name=f.name) for f in folders],
            initialization_options=NO_INDEX,
        )
    )


def _ruff_codes(folder: Path) -> set[str]:
    ruff = shutil.which("ruff")
    assert ruff is not None
    out = subprocess.run(
        [ruff, "check", "--output-format=json", "--exit-zero", "mod.py"],
        cwd=folder,
        capture_output=True,
        check=True,
    ).stdout
    return {item["code"] for item in json.loads(out)}


def _codes(diagnostics: list[types.Diagnostic]) -> dict[str, types.DiagnosticSeverity | None]:
    return {str(d.code): d.severity for d in diagnostics}


async def _until_severity(
    client: LanguageClient, uri: str, severity: types.DiagnosticSeverity
) -> None:
    async def wait() -> None:
        while _codes(client.diagnostics.get(uri, [])).get("E711") != severity:
            await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)

    await asyncio.wait_for(wait(), 30)


async def _until(client: LanguageClient, uri: str, codes: set[str]) -> list[types.Diagnostic]:
    async def wait() -> list[types.Diagnostic]:
        while set(_codes(client.diagnostics.get(uri, []))) != codes:
            await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        return list(client.diagnostics[uri])

    return await asyncio.wait_for(wait(), 30)


@pytest_lsp.fixture(config=SERVER, params=CLIENTS)
async def client(lsp_client: LanguageClient, request):
    lsp_client.editor = request.param
    yield
    await asyncio.wait_for(lsp_client.shutdown_session(), 30)


async def test_each_folder_reviews_with_its_own_settings(client: LanguageClient, tree: Path):
    await _initialize(client, client.editor, tree / "a", tree / "b", tree / "a" / "inner")
    a = open_document(client, tree / "a" / "mod.py")
    b = open_document(client, tree / "b" / "mod.py")
    inner = open_document(client, tree / "a" / "inner" / "mod.py")
    outside = open_document(client, tree / "outside" / "mod.py")
    assert _codes(await diagnostics_for(client, a, 1)) == {"F401": ERROR}
    assert _codes(await diagnostics_for(client, b, 1)) == {"E711": ERROR}
    assert _codes(await diagnostics_for(client, inner, 1)) == {"E711": ERROR}
    # Outside every folder: what ruff itself says there, at Gantry's default levels.
    codes = _codes(await diagnostics_for(client, outside, 1))
    assert set(codes) == _ruff_codes(tree / "outside")
    assert codes["F401"] == WARNING


async def test_verdicts_are_kept_in_the_folder_they_belong_to(client: LanguageClient, tree: Path):
    await _initialize(client, client.editor, tree / "a", tree / "b")
    a = open_document(client, tree / "a" / "mod.py")
    outside = open_document(client, tree / "outside" / "mod.py")
    (finding,) = await diagnostics_for(client, a, 1)
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="gantry.dismissFinding",
            arguments=[{"uri": a, "fingerprint": finding.data["fingerprint"]}],
        )
    )
    await _until(client, a, set())
    assert (tree / "a" / ".gantry" / "store.db").is_file()
    assert not (tree / "b" / ".gantry").exists()

    # The same text outside every folder: the dismissal in a/ does not apply there, and a
    # dismissal there holds for the session without writing a store anywhere.
    diagnostics = await diagnostics_for(client, outside, 1)
    f401 = next(d for d in diagnostics if d.code == "F401")
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="gantry.dismissFinding",
            arguments=[{"uri": outside, "fingerprint": f401.data["fingerprint"]}],
        )
    )
    await _until(client, outside, {str(d.code) for d in diagnostics} - {"F401"})
    assert not list((tree / "outside").rglob("*.db"))


async def test_folders_added_and_removed_at_run_time(client: LanguageClient, tree: Path):
    await _initialize(client, client.editor, tree / "a")
    b = open_document(client, tree / "b" / "mod.py")
    # Not in a folder yet: ruff still reads b/pyproject.toml (as ruff itself would, by the
    # file's path), but Gantry's settings are the defaults: E711 is information.
    assert _codes(await diagnostics_for(client, b, 1)) == {"E711": INFO}

    folder_b = types.WorkspaceFolder(uri=(tree / "b").as_uri(), name="b")
    client.workspace_did_change_workspace_folders(
        types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(added=[folder_b], removed=[])
        )
    )
    await _until_severity(client, b, ERROR)
    change_document(client, b, 2, SOURCE + "# edited\n")
    assert _codes(await diagnostics_for(client, b, 2)) == {"E711": ERROR}

    client.workspace_did_change_workspace_folders(
        types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(added=[], removed=[folder_b])
        )
    )
    await _until_severity(client, b, INFO)
    # The first folder was never disturbed.
    a = open_document(client, tree / "a" / "mod.py")
    assert set(_codes(await diagnostics_for(client, a, 1))) == {"F401"}
