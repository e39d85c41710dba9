"""Helpers for end-to-end tests that drive `gantry serve` over stdio with pytest-lsp."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

from lsp_server.headless.client import SERVE_COMMAND


def _publish_diagnostics(client: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
    client.diagnostics[params.uri] = params.diagnostics
    client.diagnostic_versions[params.uri] = params.version


def _apply_edit(client: LanguageClient, params: types.ApplyWorkspaceEditParams):
    if client.refuse_edits:  # as a client whose user declines, or whose files are read-only
        return types.ApplyWorkspaceEditResult(applied=False, failure_reason="refused")
    client.applied_edits.append(params.edit)
    return types.ApplyWorkspaceEditResult(applied=True)


def _register_capability(client: LanguageClient, params: types.RegistrationParams) -> None:
    client.registrations.extend(params.registrations)


def _status(client: LanguageClient, params) -> None:
    client.statuses.append(params)


def make_client() -> LanguageClient:
    """pytest-lsp's client, plus what real editors do that it does not: diagnostics versions,
    workspace/applyEdit and Gantry's status notification."""
    client = LanguageClient(converter_factory=default_converter)
    client.diagnostic_versions = {}
    client.applied_edits = []
    client.refuse_edits = False
    client.statuses = []
    client.registrations = []
    features = dict(DEFAULT_CLIENT_FEATURES)
    features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = _publish_diagnostics
    features[types.WORKSPACE_APPLY_EDIT] = _apply_edit
    features[types.CLIENT_REGISTER_CAPABILITY] = _register_capability
    features["gantry/status"] = _status
    register_lsp_features(client, features)
    return client


def read_actions_as_editors_do(client: LanguageClient) -> None:
    """lsprotocol reads any code action with a "command" key as a bare Command (its edit and
    kind dropped); editors tell them apart by whether `command` is a string."""
    converter = client.protocol._converter

    def structure(obj: dict, _: type) -> types.Command | types.CodeAction:
        kind = types.Command if isinstance(obj.get("command"), str) else types.CodeAction
        return converter.structure(obj, kind)

    converter.register_structure_hook(types.Command | types.CodeAction, structure)


SERVER = ClientServerConfig(server_command=list(SERVE_COMMAND), client_factory=make_client)
CLIENTS = ["visual-studio-code", "neovim"]


def write_workspace(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


async def initialize(
    client: LanguageClient,
    root: Path,
    editor: str = "visual-studio-code",
    options: dict | None = None,
) -> types.InitializeResult:
    return await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(editor),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
            initialization_options=options,
        )
    )


def open_document(
    client: LanguageClient, path: Path, text: str | None = None, version: int = 1
) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri,
                language_id="python",
                version=version,
                text=path.read_text(encoding="utf-8") if text is None else text,
            )
        )
    )
    return uri


def change_document(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


async def diagnostics_for(
    client: LanguageClient, uri: str, version: int, timeout: float = 30.0
) -> list[types.Diagnostic]:
    """Wait (bounded) until the diagnostics of `version` of `uri` have arrived."""

    async def wait() -> list[types.Diagnostic]:
        while True:
            await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
            if client.diagnostic_versions.get(uri) == version:
                return list(client.diagnostics[uri])

    if client.diagnostic_versions.get(uri) == version:
        return list(client.diagnostics[uri])
    return await asyncio.wait_for(wait(), timeout)


async def idle(client: LanguageClient, timeout: float = 60.0) -> dict:
    """Wait (bounded) until the server says it is not busy."""

    async def wait():
        while not client.statuses or client.statuses[-1].state == "busy":
            await client.wait_for_notification("gantry/status")
        return client.statuses[-1]

    return await asyncio.wait_for(wait(), timeout)


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    """Apply LSP edits (UTF-16 positions; the tests use ASCII) as an editor would."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def offset(pos: types.Position) -> int:
        if pos.line >= len(lines):
            return len(text)
        return offsets[pos.line] + pos.character

    for edit in sorted(edits, key=lambda e: offset(e.range.start), reverse=True):
        text = text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end) :]
    return text


def edits_of(edit: types.WorkspaceEdit, uri: str) -> list[types.TextEdit]:
    if edit.document_changes:
        return [
            e
            for change in edit.document_changes
            if change.text_document.uri == uri
            for e in change.edits
        ]
    return list((edit.changes or {}).get(uri, []))
