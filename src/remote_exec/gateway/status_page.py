"""`GET /`: one server-rendered HTML page on the gateway's state, for the people who run it.

Capacity, running and queued jobs per client token (named by a short hash of it, never the token
itself), the newest failures and the uptime. No script and no external asset; a Content-Security-
Policy allows only the page's own style. Every string a job supplied (its key, its argv, its
output) is HTML-escaped. A token with the `admin` scope sees every token's jobs; any other sees
its own jobs and the totals.

Signing in: the Authorization header (as the API), or a POST of the token from the page's form,
which sets a session cookie (see auth.py). The token never travels in a URL, where logs keep it.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable
from html import escape
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from remote_exec.gateway.auth import COOKIE, SESSION_S, Sessions, bearer, find_token
from remote_exec.gateway.backends import Backend
from remote_exec.gateway.config import GatewayConfig, Scope, Token
from remote_exec.gateway.registry import JobRecord, Registry

_LOGIN_BODY_BYTES = 4096
_TAIL_CHARS = 300

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;
vertical-align:top}th{background:#f3f3f3}code,pre{font:12px ui-monospace,monospace}
pre{margin:0;white-space:pre-wrap;max-width:60em}.muted{color:#777}.error{color:#a00}
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",  # no-referrer would make its own forms send Origin: null
    "X-Content-Type-Options": "nosniff",
}


def short_name(token_id: str) -> str:
    """How the page names a token: a few hex digits of its hash (Token.id is one)."""
    return token_id[:8]


def status_routes(
    config: GatewayConfig,
    backend: Backend,
    registry: Registry,
    version: str,
    clock: Callable[[], float] = time.time,
) -> list[Route]:
    sessions = Sessions(config.tokens)
    started_at = clock()

    def viewer(request: Request) -> Token | None:
        if (presented := bearer(request)) is not None:
            token = find_token(config.tokens, presented)
        else:
            token = sessions.token_of(request.cookies.get(COOKIE))
        return token

    async def page(request: Request) -> Response:
        token = viewer(request)
        if token is None:
            return _login_page(config.name, None, status=401)
        cap = backend.capacity()
        snap = registry.snapshot()
        everyone = Scope.ADMIN in token.scopes
        visible = [j for j in snap.unfinished if everyone or j.owner == token.id]
        failures = [j for j in snap.failures if everyone or j.owner == token.id]
        counts = registry.counts()
        now = clock()
        body = [
            f"<h1>Gateway {escape(config.name)}</h1>",
            (
                f"<p>backend <b>{escape(backend.name)}</b> · version {escape(version)} · up"
                f" <span id=uptime>{_duration(now - started_at)}</span>"
                f" (since {_when(started_at)}) · signed in as token"
                f" <code>{short_name(token.id)}</code>{' (admin)' if everyone else ''}</p>"
            ),
            "<h2>Capacity</h2>",
            _table(
                ["slots", "running", "queued", "GPUs", "CPUs", "memory (MB)", "finished (kept)"],
                [
                    [
                        str(cap.max_concurrency),
                        str(counts["running"]),
                        str(counts["queued"]),
                        str(cap.gpus),
                        _opt(cap.cpus),
                        _opt(cap.memory_mb),
                        str(snap.finished),
                    ]
                ],
                "capacity",
            ),
            "<h2>Clients</h2>",
            _clients(visible, token, everyone),
            "<h2>Running</h2>",
            _jobs(
                [j for j in visible if j.state == "running"],
                ["job", "token", "key", "command", "started", "for"],
                lambda j: [
                    f"<code>{escape(j.id)}</code>",
                    f"<code>{short_name(j.owner)}</code>",
                    f"<code>{escape(j.key)}</code>",
                    f"<code>{escape(j.command)}</code>",
                    _when(j.started_at),
                    _duration(now - (j.started_at or now)),
                ],
                "running",
            ),
            "<h2>Queued</h2>",
            _jobs(
                [j for j in visible if j.state == "queued"],
                ["job", "token", "key", "command", "waiting"],
                lambda j: [
                    f"<code>{escape(j.id)}</code>",
                    f"<code>{short_name(j.owner)}</code>",
                    f"<code>{escape(j.key)}</code>",
                    f"<code>{escape(j.command)}</code>",
                    _duration(now - j.created_at),
                ],
                "queued",
            ),
            "<h2>Recent failures</h2>",
            _jobs(
                failures,
                ["finished", "job", "token", "key", "state", "exit", "why"],
                lambda j: [
                    _when(j.finished_at),
                    f"<code>{escape(j.id)}</code>",
                    f"<code>{short_name(j.owner)}</code>",
                    f"<code>{escape(j.key)}</code>",
                    f"<span class=error>{escape(j.state)}</span>",
                    _opt(j.exit_code),
                    f"<pre>{escape(j.reason or j.stderr_tail[-_TAIL_CHARS:])}</pre>",
                ],
                "failures",
            ),
            "<form method=post action=/logout><button>Sign out</button></form>",
        ]
        return _html(config.name, "".join(body), refresh=True)

    async def login(request: Request) -> Response:
        if not _same_origin(request):
            return _login_page(config.name, "sign in from this gateway's own page", status=403)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > _LOGIN_BODY_BYTES:
                return _login_page(config.name, "request too large", status=413)
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
        presented = (fields.get("token") or [""])[0].strip()
        token = find_token(config.tokens, presented) if presented else None
        if token is None:
            return _login_page(config.name, "token not accepted", status=401)
        response = RedirectResponse("/", status_code=303, headers=_HEADERS)
        response.set_cookie(
            COOKIE,
            sessions.cookie_value(token),
            max_age=SESSION_S,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(request: Request) -> Response:
        if not _same_origin(request):
            return _login_page(config.name, "sign out from this gateway's own page", status=403)
        response = RedirectResponse("/", status_code=303, headers=_HEADERS)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    return [
        Route("/", page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]


def _same_origin(request: Request) -> bool:
    """A form post from another site is refused (browsers send Origin with every POST)."""
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


def _login_page(name: str, problem: str | None, status: int) -> Response:
    error = f"<p class=error id=problem>{escape(problem)}</p>" if problem else ""
    body = (
        f"<h1>Gateway {escape(name)}</h1>{error}"
        "<p>Sign in with a token of this gateway.</p>"
        "<form method=post action=/login id=login>"
        "<label>Token <input type=password name=token autocomplete=current-password"
        " required></label> <button>Sign in</button></form>"
    )
    return _html(name, body, status=status, refresh=False)


def _html(name: str, body: str, *, status: int = 200, refresh: bool) -> Response:
    meta = "<meta http-equiv=refresh content=10>" if refresh else ""
    text = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width">'
        f"{meta}<title>gantry gateway {escape(name)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )
    return HTMLResponse(text, status_code=status, headers=_HEADERS)


def _clients(jobs: list[JobRecord], viewer: Token, everyone: bool) -> str:
    running = Counter(j.owner for j in jobs if j.state == "running")
    queued = Counter(j.owner for j in jobs if j.state == "queued")
    owners = sorted(set(running) | set(queued) | ({viewer.id} if not everyone else set()))
    rows = [[f"<code>{short_name(o)}</code>", str(running[o]), str(queued[o])] for o in owners]
    return _table(["token", "running", "queued"], rows, "clients")


def _jobs(
    jobs: list[JobRecord], headers: list[str], cells: Callable[[JobRecord], list[str]], id_: str
) -> str:
    if not jobs:
        return f"<p class=muted id={id_}>none</p>"
    return _table(headers, [cells(j) for j in jobs], id_)


def _table(headers: Iterable[str], rows: list[list[str]], id_: str) -> str:
    """Cells are HTML already (escaped by the caller); headers are ours."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table id={id_}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _opt(value: object) -> str:
    return "–" if value is None else escape(str(value))


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"
