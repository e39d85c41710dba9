"""The server's state and the services that change it, built once and passed to the features.

Everything here is mutated on the event loop only; blocking work runs in the named executors on
immutable snapshots.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_server.executors import Executors
from lsp_server.review.local import LocalEngine
from lsp_server.services.ai_reviewer import AiReviewer
from lsp_server.services.fix_verifier import FixVerifier
from lsp_server.services.folder_service import ClientSetup, FolderService
from lsp_server.services.folders import Folders
from lsp_server.services.publisher import Publisher
from lsp_server.services.reviewer import Engine, Reviewer
from lsp_server.services.status import StatusReporter
from lsp_server.services.testgen import TestGeneration

log = logging.getLogger("gantry")


class Session:
    def __init__(
        self,
        server: LanguageServer,
        *,
        trust_workspace: bool = False,
        engines: Sequence[Engine] = (),
    ) -> None:
        self.server = server
        self.setup = ClientSetup(trust_workspace=trust_workspace)
        self.executors = Executors.create()
        self.folders = Folders()
        self.status = StatusReporter(server, self.notify_user)
        self.publisher = Publisher(
            server, self.status, lambda uri: self.folders.for_uri(uri).dismissed
        )
        self.reviewer = Reviewer(
            server,
            self.folders,
            self.publisher,
            self.status,
            self.executors,
            (LocalEngine(), *engines),
            self.notify_user,
        )
        self.ai_reviewer = AiReviewer(
            server, self.folders, self.publisher, self.status, self.executors, self.notify_user
        )
        self.verifier = FixVerifier(
            server,
            self.folders,
            self.publisher,
            self.status,
            self.executors,
            lambda: self.caps,
            self.notify_user,
        )
        self.testgen = TestGeneration(
            server,
            self.folders,
            self.publisher,
            self.status,
            self.executors,
            lambda: self.caps,
            self.notify_user,
        )
        self.folder_service = FolderService(
            server, self.folders, self.status, self.executors, self.setup, self.notify_user
        )

    @property
    def caps(self):
        return self.setup.caps

    def snapshot(self, uri: str):
        return self.folders.snapshot(self.server.workspace, uri)

    def notify_user(self, message: str, kind=types.MessageType.Warning) -> None:
        log.log(logging.WARNING if kind <= types.MessageType.Warning else logging.INFO, message)
        self.server.window_show_message(
            types.ShowMessageParams(type=kind, message=f"Gantry: {message}")
        )
