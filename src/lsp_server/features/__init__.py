"""Thin LSP adapters, one module per concern. Each exposes `register(server)`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lsp_server.server import GantryServer


def register_all(server: GantryServer) -> None:
    from lsp_server.features import (
        code_actions,
        commands,
        diagnostics,
        indexing,
        lifecycle,
        remote,
    )

    for module in (lifecycle, diagnostics, code_actions, commands, indexing, remote):
        module.register(server)
