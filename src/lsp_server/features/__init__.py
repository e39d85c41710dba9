"""Thin LSP adapters, one module per concern. Each exposes `register(server, session)`: the
handlers it registers reach the server's state through the session they are given."""

from __future__ import annotations

from pygls.lsp.server import LanguageServer

from lsp_server.session import Session


def register_all(server: LanguageServer, session: Session) -> None:
    from lsp_server.features import (
        code_actions,
        code_lens,
        commands,
        documents,
        hover,
        lifecycle,
        queue,
        watched_files,
    )

    for module in (
        lifecycle,
        documents,
        code_actions,
        code_lens,
        hover,
        commands,
        queue,
        watched_files,
    ):
        module.register(server, session)
