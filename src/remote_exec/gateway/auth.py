"""Who is asking: a bearer token (every route), or a signed session cookie (the status page only).

The cookie never holds the token: it names the token by its id, with an HMAC under a key made at
start-up (a restart signs everyone out) and an expiry. It is HttpOnly and SameSite=Strict, and the
API routes ignore it, so another site cannot make a signed-in browser submit jobs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable

from starlette.requests import Request

from remote_exec.gateway.config import Token

COOKIE = "gantry_session"
SESSION_S = 12 * 3600


def find_token(tokens: Iterable[Token], presented: str) -> Token | None:
    """The token whose secret is `presented`. Compares against every token, always: timing
    reveals neither which nor how much matched."""
    found = None
    for candidate in tokens:
        if hmac.compare_digest(candidate.secret.encode(), presented.encode()):
            found = candidate
    return found


def bearer(request: Request) -> str | None:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    presented = presented.strip()
    return presented if scheme.lower() == "bearer" and presented else None


class Sessions:
    def __init__(self, tokens: Iterable[Token]) -> None:
        self._key = secrets.token_bytes(32)
        self._tokens = {t.id: t for t in tokens}

    def cookie_value(self, token: Token, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + SESSION_S)
        return f"{token.id}.{expires}.{self._mac(token.id, expires)}"

    def token_of(self, value: str | None) -> Token | None:
        """The token a cookie value was made for, if it is genuine and not expired."""
        token_id, _, rest = (value or "").partition(".")
        expires, _, mac = rest.partition(".")
        if not expires.isdigit() or int(expires) < time.time():
            return None
        if not hmac.compare_digest(mac, self._mac(token_id, int(expires))):
            return None
        return self._tokens.get(token_id)

    def _mac(self, token_id: str, expires: int) -> str:
        message = f"{token_id}.{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
