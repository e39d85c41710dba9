"""pygls's protocol, strict about what it accepts and when.

- Only a well-formed JSON-RPC 2.0 message reaches pygls: what could not be decoded gets -32700,
  anything else that is not a message -32600, answered to its id when it has a usable one.
- Lifecycle order, as LSP specifies: until the initialize response, requests get -32002
  (ServerNotInitialized) and notifications other than `exit` are dropped; a second `initialize`
  and any request after `shutdown` get -32600.
- A request whose params do not fit the LSP types gets InvalidParams: pygls only logs it, leaving
  the client waiting forever.
- A change to a document that is not open is ignored: pygls raises KeyError and shows the user
  "Error in server".
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
    JsonRpcServerNotInitialized,
)
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from lsp_server.framing import ParseError

log = logging.getLogger("gantry.protocol")

MAX_NESTING = 128
"""Deeper values are refused: LSP needs a dozen levels, and handlers, cattrs and logging recurse."""

MsgId = int | str


def _is_id(value: object) -> bool:
    return type(value) in (int, str)  # not bool, not float


def _nested_deeper_than(value: object, limit: int) -> bool:
    """Walked level by level, so the check itself cannot overflow the stack."""
    level = [value]
    for _ in range(limit):
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def _problem(message: object) -> str | None:
    """Why a decoded value is not a JSON-RPC 2.0 message, or None when it is one."""
    if not isinstance(message, dict):
        return "a message must be a JSON object"
    if message.get("jsonrpc") != "2.0":
        return 'jsonrpc must be "2.0"'
    if "method" in message:
        if not isinstance(message["method"], str) or not message["method"]:
            return "method must be a non-empty string"
        if "id" in message and not _is_id(message["id"]):
            return "id must be an integer or a string"
    elif "id" not in message or not ("result" in message or "error" in message):
        return "neither a request, a notification nor a response"
    elif not (_is_id(message["id"]) or message["id"] is None):
        return "id must be an integer, a string or null"
    if _nested_deeper_than(message, MAX_NESTING):
        return f"nested more than {MAX_NESTING} levels deep"
    return None


def _request_id(message: object) -> MsgId | None:
    """The id to answer an invalid message with: its own when it is a request's, else null."""
    if isinstance(message, dict) and "method" in message and _is_id(message.get("id")):
        return message["id"]
    return None


class _Handled:
    """Stands for a message that was dealt with while decoding it."""

    jsonrpc = None


class GantryProtocol(LanguageServerProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._initialize_started = False
        self._initialized = False
        self._shutdown_requested = False

    def notify_json(self, method: str, params: dict[str, Any]) -> None:
        """A notification whose params are in their JSON form already (pygls would build and
        unstructure its classes for them: costly for thousands of diagnostics)."""
        self._send_data({"jsonrpc": self.VERSION, "method": method, "params": params})

    def handle_json(self, message: object) -> None:
        """One value from the reader: pygls sees only well-formed messages, in lifecycle order."""
        if isinstance(message, ParseError):
            log.warning("unreadable message: %s", message.reason)
            self._reply_error(None, JsonRpcParseError(message.reason))
            return
        if (problem := _problem(message)) is not None:
            log.warning("invalid message: %s", problem)
            self._reply_error(_request_id(message), JsonRpcInvalidRequest(problem))
            return
        if "method" in message and not self._in_order(message):
            return
        try:
            self.handle_message(self.structure_message(message))
        except Exception:  # the reader goes on whatever one message does
            log.exception("cannot handle a message (%s)", message.get("method", "response"))

    def _in_order(self, message: dict[str, Any]) -> bool:
        """Whether a request or notification may run now; refuses the ones that may not."""
        method = message["method"]
        if method == types.EXIT:
            return True
        error: JsonRpcException
        if method == types.INITIALIZE:
            if self._initialize_started:
                error = JsonRpcInvalidRequest("already initialized")
            elif "id" not in message:
                error = JsonRpcInvalidRequest("initialize must be a request")
            else:
                return True
        elif not self._initialized:
            error = JsonRpcServerNotInitialized("the server is not initialized yet")
        elif self._shutdown_requested:
            error = JsonRpcInvalidRequest("the server is shutting down")
        else:
            return True
        log.warning("refused %s: %s", method, error.message)
        if "id" in message:
            self._reply_error(message["id"], error)
        return False

    def _reply_error(self, msg_id: MsgId | None, error: JsonRpcException) -> None:
        # A raw dict: lsprotocol's ResponseErrorMessage drops a null id, which JSON-RPC requires.
        payload = {"code": error.code, "message": error.message}
        self._send_data({"jsonrpc": "2.0", "id": msg_id, "error": payload})

    def structure_message(self, data: dict[str, Any]):
        try:
            return super().structure_message(data)
        except JsonRpcException:
            method = data.get("method")
            log.warning("invalid params for %s", method or f"the response to {data.get('id')}")
            if "id" in data and method:
                self._reply_error(data["id"], JsonRpcInvalidParams(f"invalid params for {method}"))
            return _Handled()

    def handle_message(self, message):
        if not isinstance(message, _Handled):
            super().handle_message(message)

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams):
        self._initialize_started = True
        result = yield from super().lsp_initialize(params)
        self._initialized = True  # the response goes out next, in this same step
        return result

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args):
        self._shutdown_requested = True
        return (yield from super().lsp_shutdown(*args))

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        uri = params.text_document.uri
        if unquote(uri) not in self.workspace.text_documents:
            log.warning("ignored a change to %s, which is not open", uri)
            return
        yield from super().lsp_text_document__did_change(params)
