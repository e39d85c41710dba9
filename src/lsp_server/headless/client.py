"""The LSP client session behind `gantry check`: it runs `gantry serve` as a subprocess and talks
to it over stdio exactly as an editor does, so CI reports what the editor shows.

The client is a small JSON-RPC connection of its own rather than pygls's: a check carries tens
of thousands of diagnostics, which are read here as the plain JSON they arrive as (pygls decodes
every nested object through a hook, builds a namedtuple class for each custom notification, and
costs half a second to import).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lsp_server import __version__
from lsp_server.contract.commands import ReviewPathsArgs
from lsp_server.contract.converter import unstructure
from lsp_server.headless import server_process
from lsp_server.headless.report import Reported, reported
from lsp_server.headless.server_process import SERVE_COMMAND

log = logging.getLogger("gantry.check")

STATUS_NOTIFICATION = "gantry/status"
SHUTDOWN_GRACE_S = 5.0
"""How long the server gets to shut down and exit before it is killed."""
_STDERR_TAIL_LINES = 40
_HEADER_END = b"\r\n\r\n"
_METHOD_NOT_FOUND = -32601


def normalise_uri(uri: str) -> str:
    """One spelling per file: servers may re-quote URIs (`%3A` for `:`, `%20` for a space)."""
    return unquote(uri)


class ServerError(Exception):
    """The server could not be started, failed, or died while we needed it."""


class GantryClient:
    """A JSON-RPC connection to the server's stdio that remembers what it published."""

    def __init__(self) -> None:
        self.process: _Process | None = None
        self.diagnostics: dict[str, list[Reported]] = {}
        """The diagnostics last published per URI, read as they arrive (reading thousands
        overlaps the server's work instead of following it), with an empty path: the caller
        knows which file each URI is."""
        self.exit_reason: str | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL_LINES)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(
        self, command: Sequence[str], cwd: Path, process: subprocess.Popen[bytes] | None = None
    ) -> None:
        """Talk to `process`, or to `command` started in `cwd` when there is none."""
        try:
            started = process if process is not None else server_process.start(command, cwd)
        except OSError as exc:
            raise ServerError(f"could not start the server: {exc}") from exc
        self.process = await _Process.adopt(started)
        self._tasks = [
            asyncio.create_task(self._read_messages()),
            asyncio.create_task(self._drain_stderr()),
        ]

    async def request(self, method: str, params: Any) -> Any:
        """The result of a request; ServerError when it fails or the server goes away."""
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id := next(self._ids)] = future
        await self._send({"id": request_id, "method": method, "params": params})
        return await future

    async def notify(self, method: str, params: Any) -> None:
        await self._send({"method": method, "params": params})

    async def _send(self, message: dict[str, Any]) -> None:
        if self.exit_reason is not None:
            raise ServerError(self.exit_reason)
        assert self.process is not None and self.process.stdin is not None
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        try:
            await self.process.stdin.drain()
        except ConnectionError as exc:
            raise ServerError(self.exit_reason or f"the server went away: {exc}") from exc

    async def _read_messages(self) -> None:
        """Dispatch what the server writes until it stops; then fail what is still pending."""
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        try:
            while True:
                header = await stdout.readuntil(_HEADER_END)
                body = await stdout.readexactly(_content_length(header))
                await self._dispatch(json.loads(body))
        except (asyncio.IncompleteReadError, ServerError):
            pass  # the server closed its stdout, or its stdin: it is leaving
        except Exception as exc:  # a server we cannot understand is of no use: stop it
            self.exit_reason = f"the server wrote something that is not LSP: {exc!r}"
            self.process.kill()
        finally:
            returncode = await self.process.wait()
            self.exit_reason = self.exit_reason or f"the server exited with code {returncode}"
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ServerError(self.exit_reason))

    async def _dispatch(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method is None:  # a response
            future = self._pending.pop(message.get("id"), None)
            if future is None or future.done():
                return
            if "error" in message:
                future.set_exception(ServerError(message["error"].get("message", "failed")))
            else:
                future.set_result(message.get("result"))
        elif "id" in message:  # a request from the server
            answer = self._answer(method, message.get("params"))
            await self._send({"id": message["id"], **answer})
        else:
            self._on_notification(method, message.get("params") or {})

    def _answer(self, method: str, params: Any) -> dict[str, Any]:
        if method == "workspace/configuration":
            # CI has no editor settings: the workspace's own configuration files decide.
            return {"result": [{} for _ in params.get("items", ())]}
        if method in ("window/workDoneProgress/create", "client/registerCapability"):
            return {"result": None}
        return {"error": {"code": _METHOD_NOT_FOUND, "message": f"{method} is not supported"}}

    def _on_notification(self, method: str, params: dict[str, Any]) -> None:
        if method == "textDocument/publishDiagnostics":
            read = [reported("", diagnostic) for diagnostic in params["diagnostics"]]
            self.diagnostics[normalise_uri(params["uri"])] = read
        elif method == "window/showMessage" and params.get("type") in (1, 2):
            level = "error" if params["type"] == 1 else "warning"
            print(f"gantry: {level}: {params.get('message')}", file=sys.stderr)
        else:  # status, progress, log messages, information
            log.debug("%s: %s", method, params)

    async def _drain_stderr(self) -> None:
        """Keep the server's stderr flowing (a full pipe would block it) and its tail for errors."""
        assert self.process is not None and self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.stderr_tail.append(line)
            log.debug("server stderr: %s", line)

    async def stop(self) -> None:
        """Wait for the connection's readers, once the process is gone."""
        await asyncio.gather(*self._tasks)


class _Process:
    """A started server's stdio as asyncio streams (what asyncio.create_subprocess_exec gives,
    for a process started before the event loop was)."""

    _EXIT_POLL_S = 0.01

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        stdin: asyncio.StreamWriter,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
    ) -> None:
        self._popen = popen
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr

    @classmethod
    async def adopt(cls, popen: subprocess.Popen[bytes]) -> _Process:
        assert popen.stdin is not None and popen.stdout is not None and popen.stderr is not None
        loop = asyncio.get_running_loop()
        readers = []
        for pipe in (popen.stdout, popen.stderr):
            reader = asyncio.StreamReader()
            await loop.connect_read_pipe(lambda r=reader: asyncio.StreamReaderProtocol(r), pipe)
            readers.append(reader)
        transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), popen.stdin
        )
        stdin = asyncio.StreamWriter(transport, protocol, None, loop)
        return cls(popen, stdin, *readers)

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    async def wait(self) -> int:
        while (code := self._popen.poll()) is None:  # no thread left blocked in waitpid
            await asyncio.sleep(self._EXIT_POLL_S)
        return code

    def kill(self) -> None:
        self._popen.kill()


def _content_length(header: bytes) -> int:
    for line in header.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ValueError(f"a frame without Content-Length: {header[:100]!r}")


_CAPABILITIES = {
    # Characters, as ruff counts its columns: the report says what ruff would say.
    "general": {"positionEncodings": ["utf-32"]},
    "textDocument": {
        "publishDiagnostics": {
            "versionSupport": True,
            "codeDescriptionSupport": True,
            "dataSupport": True,
        }
    },
    "window": {"workDoneProgress": True},
    "workspace": {"configuration": True, "workspaceFolders": True},
}


class CheckSession:
    """One `gantry serve` subprocess, initialised on `root`, from start to a guaranteed end."""

    def __init__(
        self,
        root: Path,
        command: Sequence[str] = SERVE_COMMAND,
        options: dict[str, Any] | None = None,
        process: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.root = root
        self.command = command
        self.process = process
        """The server, when it was started already (from `command`, in `root`)."""
        self.options = options or {}
        """Settings for the server, as an editor's initializationOptions: the user's own (the
        command line's), never read from the workspace."""
        self.client = GantryClient()

    async def start(self, timeout: float) -> bool:
        """Start the server and complete the initialize handshake within `timeout`: True when
        done, False when time ran out. Raises ServerError when the server fails."""
        await self.client.start(self.command, self.root, self.process)
        params = {
            "processId": None,
            "clientInfo": {"name": "gantry-check", "version": __version__},
            "rootUri": self.root.as_uri(),
            "workspaceFolders": [{"uri": self.root.as_uri(), "name": self.root.name}],
            "capabilities": _CAPABILITIES,
            # CI needs findings, not the context index: skip indexing the whole workspace.
            "initializationOptions": {**self.options, "index": {"enabled": False}},
        }
        try:
            result = await asyncio.wait_for(self.client.request("initialize", params), timeout)
        except TimeoutError:
            return False
        encoding = (result.get("capabilities") or {}).get("positionEncoding", "utf-16")
        if encoding != "utf-32":
            raise ServerError(f"the server chose position encoding {encoding}; we asked for utf-32")
        await self.client.notify("initialized", {})
        return True

    async def review_paths(
        self, paths: Sequence[Path], timeout: float, *, fingerprints: bool = True, ai: bool = False
    ) -> dict[str, Any] | None:
        """Ask the server to review files and folders on disk (with `ai`, by the model too);
        its answer (files reviewed, files skipped and why, files whose AI review is incomplete)
        comes after their diagnostics. None when `timeout` ran out. Raises ServerError if the
        server fails or dies."""
        arguments = ReviewPathsArgs([str(path) for path in paths], fingerprints=fingerprints, ai=ai)
        params = {"command": "gantry.reviewPaths", "arguments": [unstructure(arguments)]}
        try:
            return await asyncio.wait_for(
                self.client.request("workspace/executeCommand", params), timeout
            )
        except TimeoutError:
            return None

    async def close(self) -> None:
        """Shut the server down politely, then make sure the process is gone."""
        client, process = self.client, self.client.process
        if process is None:
            return
        if process.returncode is None and client.exit_reason is None:
            try:
                await asyncio.wait_for(client.request("shutdown", None), SHUTDOWN_GRACE_S)
                await client.notify("exit", None)
            except (TimeoutError, ServerError) as exc:  # a hung or dead server is killed below
                log.debug("shutdown failed: %s", exc)
        try:
            await asyncio.wait_for(process.wait(), SHUTDOWN_GRACE_S)
        except TimeoutError:
            process.kill()
        await client.stop()
