"""A strict, minimal JSON-RPC peer over a subprocess's stdio: every byte the server writes must
belong to a well-formed `Content-Length` frame, as VS Code's reader demands."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lsp_server.headless.client import SERVE_COMMAND

HEADER_END = b"\r\n\r\n"


class FramingError(AssertionError):
    pass


def parse_frames(data: bytes) -> list[dict]:
    """Split a byte stream into messages; fail on anything that is not a frame."""
    messages = []
    pos = 0
    while pos < len(data):
        end = data.find(HEADER_END, pos)
        if end < 0:
            raise FramingError(f"stray bytes at {pos}: {data[pos : pos + 80]!r}")
        headers = {}
        for line in data[pos:end].split(b"\r\n"):
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise FramingError(f"bad header line at {pos}: {line!r}")
            headers[name.decode("ascii").lower()] = value.strip().decode("ascii")
        if set(headers) - {"content-length", "content-type"} or "content-length" not in headers:
            raise FramingError(f"unexpected headers {headers}")
        length = int(headers["content-length"])
        body = data[end + 4 : end + 4 + length]
        if len(body) != length:
            raise FramingError(f"truncated body at {pos}")
        message = json.loads(body.decode("utf-8"))
        if message.get("jsonrpc") != "2.0":
            raise FramingError(f"not JSON-RPC 2.0: {message}")
        messages.append(message)
        pos = end + 4 + length
    return messages


class RawServer:
    """`gantry serve` on pipes, started in `cwd` by `command` (by default as `gantry check` and
    VS Code start it); records every stdout byte for the strict parser. Like an editor, it answers
    the server's requests (with null) unless told to stay silent."""

    def __init__(
        self,
        cwd: Path,
        env: dict[str, str] | None = None,
        answer_requests: bool = True,
        command: Sequence[str] = SERVE_COMMAND,
    ) -> None:
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env={**os.environ, **(env or {})},
        )
        self.raw = bytearray()
        self.answer_requests = answer_requests
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def _read(self) -> None:
        answered = 0
        while chunk := self.proc.stdout.read1(65536):
            with self._lock:
                self.raw.extend(chunk)
            if self.answer_requests:
                requests = [m for m in self.messages() if "method" in m and "id" in m]
                for request in requests[answered:]:
                    self.send({"jsonrpc": "2.0", "id": request["id"], "result": None})
                answered = len(requests)

    def messages(self) -> list[dict]:
        """The complete frames so far (the last one may still be arriving)."""
        with self._lock:
            data = bytes(self.raw)
        end = len(data)
        while end > 0:
            try:
                return parse_frames(data[:end])
            except FramingError:
                end = data.rfind(b"Content-Length", 0, end)
        return []

    def send(self, payload: dict | bytes) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def send_raw(self, data: bytes) -> None:
        """Bytes exactly as given: frames of the caller's own making, broken ones included."""
        with self._write_lock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def request(self, method: str, params: Any) -> int:
        self._next_id += 1
        self.send({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        return self._next_id

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait_for(self, predicate, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages():
                if predicate(message):
                    return message
            time.sleep(0.02)
        raise TimeoutError(f"no matching message in {timeout} s")

    def response(self, request_id: int, timeout: float = 30.0) -> dict:
        return self.wait_for(lambda m: m.get("id") == request_id and "method" not in m, timeout)

    def close(self) -> int:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
