"""Document sync: every change asks for a review; a save also re-indexes the file; a close
clears the document's diagnostics."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from lsp_server.session import Session


def register(server: LanguageServer, session: Session) -> None:
    reviewer, ai = session.reviewer, session.ai_reviewer

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: LanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        reviewer.request(params.text_document.uri)
        ai.request(params.text_document.uri, ask_model=False)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: LanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        reviewer.request(params.text_document.uri)
        ai.request(params.text_document.uri, ask_model=False)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: LanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        reviewer.request(uri)
        ai.request(uri, ask_model=True)
        folder = session.folders.for_uri(uri)
        if folder.indexer is not None and (path := to_fs_path(uri)):
            folder.indexer.saved(Path(path))

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(ls: LanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        reviewer.forget(params.text_document.uri)
        ai.forget(params.text_document.uri)
