"""The LSP client session behind `gantry check`: it runs `gantry serve` as a subprocess and talks
to it over stdio exactly as an editor does, so CI reports what the editor shows."""

from __future__ import annotations

import asyncio
import collections
import logging
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.client import LanguageClient
from pygls.protocol import LanguageServerProtocol

from lsp_server import __version__

log = logging.getLogger("gantry.check")

STATUS_NOTIFICATION = "gantry/status"
SHUTDOWN_GRACE_S = 5.0
"""How long the server gets to shut down and exit before it is killed."""
_STDERR_TAIL_LINES = 40
SERVE_COMMAND: tuple[str, ...] = (sys.executable, "-P", "-m", "lsp_server", "serve")
"""The very server an editor runs, from the same interpreter as this command."""


def normalise_uri(uri: str) -> str:
    """One spelling per file: servers may re-quote URIs (`%3A` for `:`, `%20` for a space)."""
    return unquote(uri)


class ServerError(Exception):
    """The server could not be started, or died while we needed it."""


@attrs.define
class StatusNotification:
    """`gantry/status` as it arrives: its params stay the JSON object. (pygls would build
    namedtuple classes for every such message, a third of the client's time in a check.)"""

    params: dict[str, Any]
    method: str = STATUS_NOTIFICATION
    jsonrpc: str = "2.0"


class CheckProtocol(LanguageServerProtocol):
    def get_message_type(self, method: str) -> type | None:
        if method == STATUS_NOTIFICATION:
            return StatusNotification
        return super().get_message_type(method)


class GantryClient(LanguageClient):
    """A LanguageClient that remembers what the server published and told us."""

    def __init__(self) -> None:
        super().__init__("gantry-check", __version__, protocol_cls=CheckProtocol)
        self.diagnostics: dict[str, list[types.Diagnostic]] = {}
        self.exit_reason: str | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL_LINES)
        self._register_handlers()

    @property
    def process(self) -> asyncio.subprocess.Process | None:
        """The server subprocess (pygls keeps it in a private attribute)."""
        return self._server

    async def server_exit(self, server: asyncio.subprocess.Process) -> None:
        self.exit_reason = f"the server exited with code {server.returncode}"

    def _register_handlers(self) -> None:
        handlers = {
            types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: self._on_diagnostics,
            STATUS_NOTIFICATION: self._on_status,
            types.WINDOW_SHOW_MESSAGE: self._on_show_message,
            types.WINDOW_LOG_MESSAGE: self._on_log_message,
            types.WORKSPACE_CONFIGURATION: self._on_configuration,
            types.WINDOW_WORK_DONE_PROGRESS_CREATE: self._accept,
            types.PROGRESS: self._on_progress,
            types.CLIENT_REGISTER_CAPABILITY: self._accept,
        }
        for method, handler in handlers.items():
            # pygls tags each handler with attributes, which a bound method cannot take.
            self.feature(method)(lambda params, handler=handler: handler(params))

    def _on_diagnostics(self, params: types.PublishDiagnosticsParams) -> None:
        self.diagnostics[normalise_uri(params.uri)] = list(params.diagnostics)

    def _on_status(self, params: dict[str, Any]) -> None:
        log.debug("status: %s (%s)", params.get("state"), params.get("message"))

    def _on_show_message(self, params: types.ShowMessageParams) -> None:
        if params.type in (types.MessageType.Error, types.MessageType.Warning):
            print(f"gantry: {params.type.name.lower()}: {params.message}", file=sys.stderr)
        else:
            log.debug("server says: %s", params.message)

    def _on_log_message(self, params: types.LogMessageParams) -> None:
        log.debug("server log: %s", params.message)

    def _on_configuration(self, params: types.ConfigurationParams) -> list[dict]:
        # CI has no editor settings: the workspace's own configuration files decide.
        return [{} for _ in params.items]

    def _on_progress(self, params: types.ProgressParams) -> None:
        log.debug("progress %s: %s", params.token, params.value)

    def _accept(self, params: Any) -> None:
        return None


async def _within(request: Coroutine[Any, Any, Any], timeout: float) -> Any:
    """Await an LSP request for at most `timeout` s without cancelling it: pygls would log an
    error when the late answer finds its future cancelled."""
    return await asyncio.wait_for(asyncio.shield(request), timeout)


def _capabilities() -> types.ClientCapabilities:
    return types.ClientCapabilities(
        general=types.GeneralClientCapabilities(
            # Characters, as ruff counts its columns: the report says what ruff would say.
            position_encodings=[types.PositionEncodingKind.Utf32]
        ),
        text_document=types.TextDocumentClientCapabilities(
            synchronization=types.TextDocumentSyncClientCapabilities(did_save=True),
            publish_diagnostics=types.PublishDiagnosticsClientCapabilities(
                version_support=True,
                code_description_support=True,
                data_support=True,
            ),
        ),
        window=types.WindowClientCapabilities(work_done_progress=True),
        workspace=types.WorkspaceClientCapabilities(configuration=True, workspace_folders=True),
    )


class CheckSession:
    """One `gantry serve` subprocess, initialised on `root`, from start to a guaranteed end."""

    def __init__(self, root: Path, command: Sequence[str] = SERVE_COMMAND) -> None:
        self.root = root
        self.command = command
        self.client = GantryClient()
        self._stderr_task: asyncio.Task | None = None

    async def start(self, timeout: float) -> bool:
        """Start the server and complete the initialize handshake within `timeout`: True when
        done, False when time ran out. Raises ServerError when the server fails."""
        try:
            await self.client.start_io(*self.command, cwd=str(self.root))
        except OSError as exc:
            raise ServerError(f"could not start the server: {exc}") from exc
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        params = types.InitializeParams(
            process_id=None,
            client_info=types.ClientInfo(name="gantry-check", version=__version__),
            root_uri=self.root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=self.root.as_uri(), name=self.root.name)],
            capabilities=_capabilities(),
            # CI needs findings, not the context index: skip indexing the whole workspace.
            initialization_options={"index": {"enabled": False}},
        )
        try:
            result = await _within(self.client.initialize_async(params), timeout)
        except TimeoutError:
            return False
        except (RuntimeError, OSError, JsonRpcException) as exc:
            # pygls fails pending requests with RuntimeError when the server exits
            raise ServerError(self.client.exit_reason or f"initialize failed: {exc}") from exc
        encoding = result.capabilities.position_encoding or types.PositionEncodingKind.Utf16
        if encoding != types.PositionEncodingKind.Utf32:
            raise ServerError(f"the server chose position encoding {encoding}; we asked for utf-32")
        self.client.initialized(types.InitializedParams())
        return True

    async def review_paths(self, paths: Sequence[Path], timeout: float) -> dict[str, Any] | None:
        """Ask the server to review files and folders on disk; its answer (files reviewed,
        files skipped and why) comes after their diagnostics. None when `timeout` ran out.
        Raises ServerError if the server fails or dies."""
        params = types.ExecuteCommandParams(
            command="gantry.reviewPaths", arguments=[{"paths": [str(path) for path in paths]}]
        )
        try:
            return await _within(self.client.workspace_execute_command_async(params), timeout)
        except TimeoutError:
            return None
        except (RuntimeError, OSError, JsonRpcException) as exc:
            raise ServerError(self.client.exit_reason or f"the review failed: {exc}") from exc

    async def close(self) -> None:
        """Shut the server down politely, then make sure the process is gone."""
        client = self.client
        process = client.process
        if process is not None and process.returncode is None and not client.exit_reason:
            try:
                await _within(client.shutdown_async(None), SHUTDOWN_GRACE_S)
                client.exit(None)
            except (TimeoutError, RuntimeError, OSError, JsonRpcException) as exc:
                # a hung or dead server is killed below
                log.debug("shutdown failed: %s", exc)
        if process is not None:
            try:
                await asyncio.wait_for(process.wait(), SHUTDOWN_GRACE_S)
            except TimeoutError:
                process.kill()
                await process.wait()
        try:
            await client.stop()
        except (EOFError, OSError, RuntimeError) as exc:
            # a connection cut mid-message ends its reader with an error
            log.debug("client stop: %s", exc)
        if self._stderr_task is not None:
            await self._stderr_task

    async def _drain_stderr(self) -> None:
        """Keep the server's stderr flowing (a full pipe would block it) and its tail for errors."""
        process = self.client.process
        if process is None or process.stderr is None:
            return
        async for raw in process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.client.stderr_tail.append(line)
            log.debug("server stderr: %s", line)
