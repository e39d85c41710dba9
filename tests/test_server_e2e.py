"""The server end to end over stdio, as VS Code and Neovim drive it (their capability snapshots)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_lsp
from lsp_harness import (
    CLIENTS,
    SERVER,
    apply_text_edits,
    change_document,
    diagnostics_for,
    edits_of,
    idle,
    initialize,
    open_document,
    write_workspace,
)
from lsprotocol import types
from pytest_lsp import LanguageClient

PYPROJECT = '[tool.ruff.lint]\nselect = ["E", "F"]\n'
SAMPLE = """import os
import sys


def greet(name):
    unused = 1
    return "hello " + name


def check(value):
    if value == None:
        return False
    try:
        return int(value)
    except:
        return None
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return write_workspace(tmp_path / "ws", {"pyproject.toml": PYPROJECT, "app.py": SAMPLE})


@pytest_lsp.fixture(config=SERVER, params=CLIENTS)
async def client(lsp_client: LanguageClient, request, workspace: Path):
    lsp_client.editor = request.param
    result = await initialize(lsp_client, workspace, request.param)
    lsp_client.encoding = result.capabilities.position_encoding or "utf-16"
    yield
    await lsp_client.shutdown_session()


def by_code(diagnostics: list[types.Diagnostic]) -> dict[str, list[types.Diagnostic]]:
    out: dict[str, list[types.Diagnostic]] = {}
    for d in diagnostics:
        out.setdefault(str(d.code), []).append(d)
    return out


async def test_open_publishes_ruff_findings(client: LanguageClient, workspace: Path):
    uri = open_document(client, workspace / "app.py")
    diagnostics = await diagnostics_for(client, uri, 1)
    codes = by_code(diagnostics)
    assert set(codes) >= {"F401", "F841", "E711", "E722"}
    unused_os = codes["F401"][0]
    assert unused_os.source == "gantry"
    assert unused_os.range.start == types.Position(line=0, character=7)
    assert unused_os.code_description.href.startswith("https://docs.astral.sh/ruff/rules/")
    assert len(unused_os.data["fingerprint"]) >= 16
    assert unused_os.data["fix"]["applicability"] == "safe"
    assert types.DiagnosticTag.Unnecessary in unused_os.tags
    assert codes["E722"][0].data["fix"] is None
    status = await idle(client)
    assert status.state == "ready"
    assert status.counts.findings == len(diagnostics)


async def test_change_republishes_with_the_new_version(client: LanguageClient, workspace: Path):
    uri = open_document(client, workspace / "app.py")
    await diagnostics_for(client, uri, 1)
    change_document(client, uri, 2, SAMPLE.replace("import os\n", ""))
    diagnostics = await diagnostics_for(client, uri, 2)
    assert [d.range.start.line for d in diagnostics if d.code == "F401"] == [0]  # only sys


async def _resolved(client: LanguageClient, action: types.CodeAction) -> types.CodeAction:
    if action.edit is None and action.data is not None:
        action = await client.code_action_resolve_async(action)
    return action


async def test_quick_fixes_safe_preferred_unsafe_labelled(client: LanguageClient, workspace: Path):
    uri = open_document(client, workspace / "app.py")
    codes = by_code(await diagnostics_for(client, uri, 1))
    for code, safe in (("F401", True), ("F841", False)):
        diag = codes[code][0]
        actions = await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=diag.range,
                context=types.CodeActionContext(diagnostics=[diag]),
            )
        )
        # lsprotocol's client-side parser reads any action with a command as a bare Command
        fixes = [a for a in actions if isinstance(a, types.CodeAction) and a.kind == "quickfix"]
        assert len(fixes) == 1, [a.title for a in actions]
        fix = fixes[0]
        assert bool(fix.is_preferred) is safe
        assert ("unsafe" in fix.title) is not safe
        # VS Code resolves edits lazily; Neovim 0.11 too (resolveSupport: edit).
        assert fix.edit is None and fix.data is not None
        fix = await _resolved(client, fix)
        if client.editor == "visual-studio-code":
            assert fix.edit.document_changes and fix.edit.changes is None
        else:
            assert fix.edit.changes and fix.edit.document_changes is None
        fixed = apply_text_edits(SAMPLE, edits_of(fix.edit, uri))
        change_document(client, uri, 2 if safe else 3, fixed)
        after = await diagnostics_for(client, uri, 2 if safe else 3)
        assert diag.data["fingerprint"] not in {d.data["fingerprint"] for d in after}
        change_document(client, uri, 4 if safe else 5, SAMPLE)  # back to the original
        await diagnostics_for(client, uri, 4 if safe else 5)
        codes = by_code(client.diagnostics[uri])
        titles = [a.title for a in actions]
        assert any("dismiss" in t for t in titles) and any("false positive" in t for t in titles)


async def test_fix_all_respects_only(client: LanguageClient, workspace: Path):
    uri = open_document(client, workspace / "app.py")
    diagnostics = await diagnostics_for(client, uri, 1)
    everything = types.Range(
        start=types.Position(line=0, character=0), end=types.Position(line=16, character=0)
    )
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=everything,
            context=types.CodeActionContext(diagnostics=diagnostics, only=["source.fixAll"]),
        )
    )
    assert [a.kind for a in actions] == ["source.fixAll.gantry"]
    action = await _resolved(client, actions[0])
    fixed = apply_text_edits(SAMPLE, edits_of(action.edit, uri))
    assert "import os" not in fixed and "except:" in fixed  # safe fixes only
    change_document(client, uri, 2, fixed)
    after = by_code(await diagnostics_for(client, uri, 2))
    assert "F401" not in after and "E722" in after

    none = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=everything,
            context=types.CodeActionContext(diagnostics=[], only=["quickfix"]),
        )
    )
    assert not none  # another kind asked for: no fix-all


async def test_dismissed_finding_survives_line_shifts_not_code_changes(
    client: LanguageClient, workspace: Path
):
    uri = open_document(client, workspace / "app.py")
    e722 = by_code(await diagnostics_for(client, uri, 1))["E722"][0]
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="gantry.dismissFinding",
            arguments=[
                {"uri": uri, "fingerprint": e722.data["fingerprint"], "verdict": "false_positive"}
            ],
        )
    )
    assert result["verdict"] == "false_positive"
    await idle(client)
    assert "E722" not in by_code(client.diagnostics[uri])

    shifted = "# a new header line\n\n\n" + SAMPLE.replace(
        "    unused = 1\n", "    unused = 1\n    more = 2\n"
    )
    change_document(client, uri, 2, shifted)
    assert "E722" not in by_code(await diagnostics_for(client, uri, 2))

    same_function = shifted.replace("        return None", "        return 0")
    change_document(client, uri, 3, same_function)
    assert "E722" not in by_code(await diagnostics_for(client, uri, 3))

    flagged_line_changed = same_function.replace("    except:", "    except:  # why not")
    change_document(client, uri, 4, flagged_line_changed)
    assert "E722" in by_code(await diagnostics_for(client, uri, 4))


@pytest.mark.parametrize("indexing", [True, False], ids=["indexing", "no-index"])
async def test_a_dismissal_outlives_the_server(workspace: Path, indexing: bool):
    """With indexing off no store is made up front; the first dismissal makes one."""
    fingerprints = []
    options = {"index": {"enabled": indexing}}
    for session in range(2):
        client = await SERVER.start()
        try:
            await initialize(client, workspace, options=options)
            uri = open_document(client, workspace / "app.py")
            e722 = by_code(await diagnostics_for(client, uri, 1)).get("E722", [])
            fingerprints.append([d.data["fingerprint"] for d in e722])
            if session == 0:
                action_args = {"uri": uri, "fingerprint": e722[0].data["fingerprint"]}
                await client.workspace_execute_command_async(
                    types.ExecuteCommandParams(
                        command="gantry.dismissFinding", arguments=[action_args]
                    )
                )
            await client.shutdown_session()
        finally:
            await client.stop()
    assert len(fingerprints[0]) == 1 and fingerprints[1] == []


async def test_binary_and_oversized_documents_are_skipped_once(
    client: LanguageClient, workspace: Path
):
    big = workspace / "big.py"
    big.write_text("x = 1\n" * 300_000)
    uri = open_document(client, big)
    assert await diagnostics_for(client, uri, 1) == []
    binary = workspace / "blob.py"
    uri2 = open_document(client, binary, text="import os\x00\x01\n")
    assert await diagnostics_for(client, uri2, 1) == []
    await idle(client)
    notes = [m.message for m in client.messages if "not reviewed" in m.message]
    assert len(notes) == 2
    assert any("max_file_size_kb" in n for n in notes) and any("binary" in n for n in notes)


async def test_a_corrupt_store_is_rebuilt_keeping_verdicts(workspace: Path):
    from lsp_server.config import Settings, store_path

    async def session(dismiss: bool) -> tuple[set[str], list[str]]:
        client = await SERVER.start()
        try:
            await initialize(client, workspace)
            uri = open_document(client, workspace / "app.py")
            codes = by_code(await diagnostics_for(client, uri, 1))
            if dismiss:
                await client.workspace_execute_command_async(
                    types.ExecuteCommandParams(
                        command="gantry.dismissFinding",
                        arguments=[
                            {"uri": uri, "fingerprint": codes["E722"][0].data["fingerprint"]}
                        ],
                    )
                )
            await idle(client)
            await client.shutdown_session()
            return set(codes), [m.message for m in client.messages]
        finally:
            await client.stop()

    await session(dismiss=True)
    store = store_path(workspace, Settings())
    data = bytearray(store.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = b"\xde\xad" * 2048  # scribble over the middle
    store.write_bytes(bytes(data))
    codes, messages = await session(dismiss=False)
    assert "E722" not in codes
    assert any("could not be used" in m and "1 verdict" in m for m in messages), messages
    assert list(store.parent.glob(store.name + ".corrupt-*"))


async def test_positions_are_in_the_negotiated_encoding(client: LanguageClient, workspace: Path):
    text = 'x = "é😀"; import os\n'
    uri = open_document(client, workspace / "app.py", text=text)
    (f401,) = [d for d in await diagnostics_for(client, uri, 1) if d.code == "F401"]
    # "os" starts at code point 17: 18 UTF-16 units (the emoji takes two), 21 UTF-8 bytes.
    expected = {"utf-16": 18, "utf-8": 21, "utf-32": 17}
    assert f401.range.start.character == expected[client.encoding]


async def test_a_client_without_resolve_gets_eager_plain_edits(workspace: Path):
    client = await SERVER.start()
    try:
        await client.initialize_session(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                root_uri=workspace.as_uri(),
            )
        )
        uri = open_document(client, workspace / "app.py")
        f401 = by_code(await diagnostics_for(client, uri, 1))["F401"][0]
        actions = await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=f401.range,
                context=types.CodeActionContext(diagnostics=[f401]),
            )
        )
        fix = next(a for a in actions if isinstance(a, types.CodeAction) and a.kind == "quickfix")
        assert fix.data is None and fix.edit.changes and not fix.edit.document_changes
        assert "import os" not in apply_text_edits(SAMPLE, edits_of(fix.edit, uri))
        await client.shutdown_session()
    finally:
        await client.stop()


async def test_review_workspace_and_file_from_disk(client: LanguageClient, workspace: Path):
    (workspace / "pkg").mkdir()
    (workspace / "pkg" / "util.py").write_text("import sys\n")
    (workspace / "ignored.py").write_text("import json\n")
    (workspace / ".gitignore").write_text("ignored.py\n")
    (workspace / ".git").mkdir()  # as for ruff, .gitignore applies inside a git repository
    opened = open_document(client, workspace / "app.py")
    await diagnostics_for(client, opened, 1)
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="gantry.reviewWorkspace", arguments=[])
    )
    assert result["files"] == 2  # app.py and pkg/util.py; ignored.py is ignored
    await idle(client)
    util = (workspace / "pkg" / "util.py").as_uri()
    assert [d.code for d in client.diagnostics[util]] == ["F401"]
    assert (workspace / "ignored.py").as_uri() not in client.diagnostics

    (workspace / "pkg" / "util.py").write_text("import sys\nimport os\n")
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="gantry.reviewFile", arguments=[{"uri": util}])
    )
    assert result["findings"] == 2
    with pytest.raises(Exception, match="not a file Gantry reviews"):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="gantry.reviewFile", arguments=[{"uri": (workspace / "x.txt").as_uri()}]
            )
        )
