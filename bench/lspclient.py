"""A raw, minimal JSON-RPC/LSP client over a child's stdio, for benchmarking.

One reader thread parses the server's stdout strictly (Content-Length framing, JSON-RPC 2.0
bodies) and timestamps every message with time.perf_counter() the moment its body is complete.
Anything else on stdout (a stray print, a bad header, a truncated body) is recorded in
`protocol_errors`: the benchmark reports that server as an error row. Server -> client requests
get the answer a plain editor gives (null, or one null per configuration item).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Message = dict[str, Any]


class ServerError(RuntimeError):
    pass


def client_capabilities() -> dict[str, Any]:
    """What a real editor declares (trimmed from VS Code / Neovim), without pull diagnostics:
    every server here then pushes textDocument/publishDiagnostics."""
    return {
        "general": {"positionEncodings": ["utf-16"]},
        "window": {
            "workDoneProgress": True,
            "showMessage": {"messageActionItem": {"additionalPropertiesSupport": False}},
            "showDocument": {"support": True},
        },
        "workspace": {
            "applyEdit": True,
            "configuration": True,
            "workspaceFolders": True,
            "didChangeConfiguration": {"dynamicRegistration": True},
            "didChangeWatchedFiles": {"dynamicRegistration": True, "relativePatternSupport": True},
            "workspaceEdit": {
                "documentChanges": True,
                "resourceOperations": ["create", "rename", "delete"],
            },
            "symbol": {"dynamicRegistration": False},
            "executeCommand": {"dynamicRegistration": False},
        },
        "textDocument": {
            "synchronization": {
                "dynamicRegistration": False,
                "willSave": True,
                "willSaveWaitUntil": True,
                "didSave": True,
            },
            "publishDiagnostics": {
                "relatedInformation": True,
                "versionSupport": True,
                "tagSupport": {"valueSet": [1, 2]},
                "codeDescriptionSupport": True,
                "dataSupport": True,
            },
            "codeAction": {
                "dynamicRegistration": False,
                "isPreferredSupport": True,
                "dataSupport": True,
                "resolveSupport": {"properties": ["edit"]},
                "codeActionLiteralSupport": {
                    "codeActionKind": {
                        "valueSet": [
                            "",
                            "quickfix",
                            "refactor",
                            "refactor.extract",
                            "refactor.inline",
                            "refactor.rewrite",
                            "source",
                            "source.organizeImports",
                            "source.fixAll",
                        ]
                    }
                },
            },
            "hover": {"contentFormat": ["markdown", "plaintext"]},
            "completion": {
                "completionItem": {"snippetSupport": True, "documentationFormat": ["markdown"]},
            },
            "documentSymbol": {"hierarchicalDocumentSymbolSupport": True},
        },
    }


class LspClient:
    def __init__(
        self,
        argv: Sequence[str],
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        on_request: Callable[[Message], Any] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
        )
        self.messages: queue.Queue[tuple[float, Message]] = queue.Queue()
        self.protocol_errors: list[str] = []
        self._stderr = bytearray()
        self._next_id = 0
        self._write_lock = threading.Lock()
        self._on_request = on_request
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._err_reader.start()

    # -- writing -------------------------------------------------------------------------------

    def _send(self, message: Message) -> None:
        body = json.dumps(message, separators=(",", ":")).encode("utf-8")
        data = b"Content-Length: %d\r\n\r\n" % len(body) + body
        with self._write_lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def request(self, method: str, params: Any = None) -> int:
        self._next_id += 1
        message: Message = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        self._send(message)
        return self._next_id

    def notify(self, method: str, params: Any = None) -> None:
        message: Message = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self._send(message)

    # -- reading -------------------------------------------------------------------------------

    def _read_stdout(self) -> None:
        out = self.proc.stdout
        assert out is not None
        try:
            while True:
                length = None
                first = True
                while True:
                    line = out.readline()
                    if not line:
                        if not first:
                            self.protocol_errors.append("stdout ended inside a header")
                        return
                    first = False
                    if line == b"\r\n":
                        break
                    if not line.endswith(b"\r\n") or b":" not in line:
                        self.protocol_errors.append(f"not an LSP header: {line[:120]!r}")
                        return
                    name, _, value = line[:-2].partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value.strip())
                    elif name != b"content-type":
                        self.protocol_errors.append(f"unknown header: {line[:120]!r}")
                        return
                if length is None:
                    self.protocol_errors.append("header without Content-Length")
                    return
                body = b""
                while len(body) < length:
                    chunk = out.read(length - len(body))
                    if not chunk:
                        self.protocol_errors.append("stdout ended inside a body")
                        return
                    body += chunk
                stamp = time.perf_counter()
                try:
                    message = json.loads(body)
                except ValueError:
                    self.protocol_errors.append(f"body is not JSON: {body[:120]!r}")
                    return
                if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
                    self.protocol_errors.append(f"not a JSON-RPC 2.0 message: {body[:120]!r}")
                    return
                if "method" in message and "id" in message:
                    self._answer(message)
                self.messages.put((stamp, message))
        except Exception as exc:
            self.protocol_errors.append(f"reader failed: {exc!r}")

    def _answer(self, message: Message) -> None:
        method = message["method"]
        result: Any = None
        if self._on_request is not None:
            result = self._on_request(message)
        elif method == "workspace/configuration":
            result = [None for _ in message.get("params", {}).get("items", [])]
        try:
            self._send({"jsonrpc": "2.0", "id": message["id"], "result": result})
        except OSError:
            pass

    def _read_stderr(self) -> None:
        err = self.proc.stderr
        assert err is not None
        while chunk := err.read(65536):
            self._stderr += chunk
            if len(self._stderr) > 1 << 20:
                del self._stderr[: len(self._stderr) - (1 << 19)]

    def stderr_tail(self, n: int = 400) -> str:
        return bytes(self._stderr[-n:]).decode("utf-8", "replace").strip()

    def wait_for(
        self, predicate: Callable[[Message], bool], timeout: float
    ) -> tuple[float, Message]:
        """The first message (from now on in the queue) matching predicate; others dropped."""
        deadline = time.perf_counter() + timeout
        while True:
            left = deadline - time.perf_counter()
            if self.protocol_errors:
                raise ServerError("protocol error: " + self.protocol_errors[0])
            if left <= 0:
                raise TimeoutError(f"no matching message within {timeout} s")
            try:
                stamp, message = self.messages.get(timeout=min(left, 0.25))
            except queue.Empty:
                if self.proc.poll() is not None and self.messages.empty():
                    self._reader.join(1)
                    if self.messages.empty():
                        raise ServerError(
                            f"server exited ({self.proc.returncode}): {self.stderr_tail()}"
                        ) from None
                continue
            if predicate(message):
                return stamp, message

    def wait_response(self, request_id: int, timeout: float) -> tuple[float, Message]:
        stamp, message = self.wait_for(
            lambda m: m.get("id") == request_id and "method" not in m, timeout
        )
        if "error" in message:
            raise ServerError(f"request {request_id} failed: {message['error']}")
        return stamp, message

    def drain(self) -> None:
        while True:
            try:
                self.messages.get_nowait()
            except queue.Empty:
                return

    # -- lifecycle -----------------------------------------------------------------------------

    def peak_rss_kib(self) -> int | None:
        """VmHWM of the server process (not of its children), while it runs."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def close(self, timeout: float = 3.0) -> None:
        """shutdown + exit, then terminate, then kill: the process never outlives the call."""
        if self.proc.poll() is None:
            try:
                rid = self.request("shutdown")
                self.wait_response(rid, timeout)
                self.notify("exit")
            except (OSError, TimeoutError, ServerError):
                pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self._reader.join(1)


def file_uri(path: Path) -> str:
    return Path(os.path.abspath(path)).as_uri()


def initialize_params(root: Path, options: Any = None) -> dict[str, Any]:
    uri = file_uri(root)
    params: dict[str, Any] = {
        "processId": os.getpid(),
        "clientInfo": {"name": "gantry-bench", "version": "1"},
        "locale": "en",
        "rootPath": str(root),
        "rootUri": uri,
        "workspaceFolders": [{"uri": uri, "name": root.name}],
        "capabilities": client_capabilities(),
        "trace": "off",
    }
    if options is not None:
        params["initializationOptions"] = options
    return params
