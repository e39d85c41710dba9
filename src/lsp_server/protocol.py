"""pygls' protocol, with one repair: a request whose params do not fit the LSP types gets an
`InvalidParams` error response. pygls only logs it, leaving the client waiting forever."""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol.types import ResponseError
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol

log = logging.getLogger("gantry.protocol")


class _Answered:
    """Stands for a message that was already answered while decoding it."""

    jsonrpc = None


class GantryProtocol(LanguageServerProtocol):
    def structure_message(self, data: dict[str, Any]):
        try:
            return super().structure_message(data)
        except JsonRpcException:
            method = data.get("method")
            if "id" not in data or not method:
                raise  # a notification: nobody is waiting for an answer
            log.warning("invalid params for %s (request %s)", method, data["id"])
            error = JsonRpcInvalidParams(f"invalid params for {method}")
            self._send_response(
                data["id"], error=ResponseError(code=error.code, message=error.message)
            )
            return _Answered()

    def handle_message(self, message):
        if not isinstance(message, _Answered):
            super().handle_message(message)
