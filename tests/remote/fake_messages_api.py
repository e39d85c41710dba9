"""A scripted Anthropic Messages-API server on loopback: the project's only stand-in for a model.

Real HTTP on 127.0.0.1 (an ephemeral port, or ``port=``), answering in the real wire format: the same JSON the
Messages API returns, the same error envelope, the same server-sent-event sequence when a request
asks for ``"stream": true``. Tests script what the next requests get::

    from fake_messages_api import FakeMessagesAPI, rate_limited, tool_use

    with FakeMessagesAPI() as api:
        api.script(rate_limited(retry_after=7), tool_use("report", {"findings": []}))
        client = anthropic.Anthropic(base_url=api.url, api_key="k", max_retries=0)
        ...
        assert api.requests[0].body["model"] == "m"

or as a fixture::

    @pytest.fixture
    def fake_api() -> Iterator[FakeMessagesAPI]:
        with FakeMessagesAPI() as api:
            yield api

- ``script(*answers)`` queues answers for ``POST /v1/messages`` (first in, first out); when the queue
  is empty every request gets ``text(DEFAULT_TEXT)``.
- ``POST /v1/messages/count_tokens`` answers ``{"input_tokens": api.count_tokens}``, or the API's
  404 ``not_found_error`` while ``count_tokens`` is None (as servers without counting do).
- ``requests`` lists what arrived (method, path, lower-cased headers, JSON body), in order.
- ``hang()`` accepts a request and never answers; hung handlers are released when the server
  closes (and after ``HANG_LIMIT_S`` at most), so a test can never wait forever on one.

Answers: ``text``, ``tool_use``, ``error`` and its named cases (``rate_limited``, ``spend_limit``,
``overloaded``, ``server_error``, ``unavailable``), ``hang``, ``malformed`` and ``raw``.
"""

from __future__ import annotations

import collections
import itertools
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import attrs

DEFAULT_TEXT = "Hello from the fake Messages API."
HANG_LIMIT_S = 60.0
"""The longest a hung request is held if the server is never closed."""


@attrs.frozen
class Received:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-cased names."""
    body: Any
    """The decoded JSON body, or None when it was empty or not JSON."""


@attrs.frozen
class Message:
    """A 200 Messages answer: text and/or one tool_use block (streamed if the request asks)."""

    text: str | None = None
    tool: tuple[str, dict[str, Any]] | None = None
    stop_reason: str | None = None
    """Defaults to "tool_use" with a tool, else "end_turn"."""
    model: str | None = None
    """Defaults to the model the request named."""
    input_tokens: int = 12
    output_tokens: int = 7


@attrs.frozen
class Raw:
    """Any status, headers and body bytes, sent as given."""

    status: int
    body: bytes
    headers: dict[str, str] = attrs.Factory(dict)


@attrs.frozen
class Hang:
    """Read the request, then answer nothing until the server closes."""


Answer = Message | Raw | Hang


def text(text: str = DEFAULT_TEXT, **fields: Any) -> Message:
    return Message(text=text, **fields)


def tool_use(
    name: str, input: dict[str, Any], *, text: str | None = None, **fields: Any
) -> Message:
    return Message(text=text, tool=(name, input), **fields)


def error(
    status: int,
    type: str,
    message: str,
    *,
    error_code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Raw:
    """The API's error envelope; ``error_code`` goes to ``error.details.error_code``."""
    err: dict[str, Any] = {"type": type, "message": message}
    if error_code is not None:
        err["details"] = {"error_code": error_code}
    body = {"type": "error", "error": err, "request_id": f"req_fake_err_{status}"}
    return Raw(status, _json(body), {"content-type": "application/json", **(headers or {})})


def rate_limited(retry_after: str | int | None = None) -> Raw:
    """429 rate_limit_error; ``retry_after`` is sent as given (seconds, or an HTTP-date)."""
    headers = {} if retry_after is None else {"retry-after": str(retry_after)}
    return error(
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your rate limit.",
        headers=headers,
    )


def spend_limit() -> Raw:
    """429 as Anthropic sends it when the organization's monthly spend cap is reached."""
    return error(
        429,
        "rate_limit_error",
        "You have reached your API usage limit for this month. "
        "Access resumes on the first day of next month.",
        error_code="enforced_spend_limit_reached",
    )


def overloaded(retry_after: str | int | None = None) -> Raw:
    headers = {} if retry_after is None else {"retry-after": str(retry_after)}
    return error(529, "overloaded_error", "Overloaded", headers=headers)


def server_error() -> Raw:
    return error(500, "api_error", "Internal server error")


def unavailable(retry_after: str | int | None = None) -> Raw:
    headers = {} if retry_after is None else {"retry-after": str(retry_after)}
    return error(503, "api_error", "Service unavailable", headers=headers)


def hang() -> Hang:
    return Hang()


def malformed(body: bytes = b'{"id": "msg_fake", "type": "message", "content": [') -> Raw:
    """A 200 whose JSON is cut short."""
    return Raw(200, body, {"content-type": "application/json"})


def raw(
    status: int, body: bytes | str | dict[str, Any], headers: dict[str, str] | None = None
) -> Raw:
    if isinstance(body, dict):
        body = _json(body)
    elif isinstance(body, str):
        body = body.encode()
    return Raw(status, body, {"content-type": "application/json", **(headers or {})})


class FakeMessagesAPI:
    """The server; a context manager (or call ``start()`` / ``close()``)."""

    def __init__(self, *, count_tokens: int | None = None, port: int = 0) -> None:
        """``port``: 0 for an ephemeral one, or a chosen port (e.g. one a client was already
        given, to bring a remote "back up" where it was down)."""
        self.count_tokens = count_tokens
        self.requests: list[Received] = []
        self._answers: collections.deque[Answer] = collections.deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL to give a client (no /v1: the SDK adds it)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *answers: Answer) -> None:
        with self._lock:
            self._answers.extend(answers)

    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # releases hung handlers before shutdown waits for the loop
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)

    def _next_answer(self) -> Answer:
        with self._lock:
            return self._answers.popleft() if self._answers else text()

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)


def _handler_for(api: FakeMessagesAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def do_GET(self) -> None:
            self._receive()
            self._send(error(404, "not_found_error", f"Not found: {self.path}"))

        def do_POST(self) -> None:
            body = self._receive()
            path = self.path.split("?", 1)[0]
            if path == "/v1/messages/count_tokens":
                self._send(_count_tokens_answer(api.count_tokens))
            elif path == "/v1/messages":
                self._answer(api._next_answer(), body if isinstance(body, dict) else {})
            else:
                self._send(error(404, "not_found_error", f"Not found: {path}"))

        def _receive(self) -> Any:
            length = int(self.headers.get("content-length") or 0)
            data = self.rfile.read(length) if length else b""
            try:
                body = json.loads(data) if data else None
            except ValueError:
                body = None
            headers = {k.lower(): v for k, v in self.headers.items()}
            api._record(Received(self.command, self.path, headers, body))
            return body

        def _answer(self, answer: Answer, request: dict[str, Any]) -> None:
            if isinstance(answer, Hang):
                api._closing.wait(HANG_LIMIT_S)
                self.close_connection = True
            elif isinstance(answer, Raw):
                self._send(answer)
            else:
                message = _message_json(answer, request, api._next_id())
                if request.get("stream"):
                    self._stream(message)
                else:
                    self._send(raw(200, message, {"request-id": f"req_fake_{message['id']}"}))

        def _send(self, answer: Raw) -> None:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def _stream(self, message: dict[str, Any]) -> None:
            # Unknown length: the connection closes after message_stop, as HTTP/1.1 allows.
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("request-id", f"req_fake_{message['id']}")
            self.send_header("connection", "close")
            self.end_headers()
            self.close_connection = True
            for event in _events(message):
                self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()

    return Handler


def _count_tokens_answer(count: int | None) -> Raw:
    if count is None:
        return error(404, "not_found_error", "Not found: /v1/messages/count_tokens")
    return raw(200, {"input_tokens": count})


def _message_json(answer: Message, request: dict[str, Any], n: int) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if answer.text is not None:
        content.append({"type": "text", "text": answer.text})
    if answer.tool is not None:
        name, input = answer.tool
        content.append(
            {"type": "tool_use", "id": f"toolu_fake_{n:04d}", "name": name, "input": input}
        )
    stop = answer.stop_reason or ("tool_use" if answer.tool else "end_turn")
    return {
        "id": f"msg_fake_{n:04d}",
        "type": "message",
        "role": "assistant",
        "model": answer.model or request.get("model", "fake-model"),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": answer.input_tokens,
            "output_tokens": answer.output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def _events(message: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The real event sequence for a finished message (deltas split in small pieces)."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**usage, "output_tokens": 1}
    yield {"type": "message_start", "message": start}
    yield {"type": "ping"}
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            yield {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            }
            for piece in _pieces(block["text"]):
                delta = {"type": "text_delta", "text": piece}
                yield {"type": "content_block_delta", "index": index, "delta": delta}
        else:
            empty = {**block, "input": {}}
            yield {"type": "content_block_start", "index": index, "content_block": empty}
            for piece in ["", *_pieces(json.dumps(block["input"]))]:
                delta = {"type": "input_json_delta", "partial_json": piece}
                yield {"type": "content_block_delta", "index": index, "delta": delta}
        yield {"type": "content_block_stop", "index": index}
    yield {
        "type": "message_delta",
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": usage["output_tokens"]},
    }
    yield {"type": "message_stop"}


def _pieces(s: str, size: int = 8) -> list[str]:
    return [s[i : i + size] for i in range(0, len(s), size)]


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()
