"""The dashboard's Starlette app: secret and Host checks, the JSON API, SSE pushes, the page.

Every request must carry the per-launch secret: ``?token=`` once (the page then lives on an
HttpOnly SameSite=Strict cookie), the cookie, or ``Authorization: Bearer <secret>`` (scripts).
Anything else is 403, and so is a Host header that is not this loopback address and port
(DNS rebinding). The API maps ``/api/<name>`` to the service method ``tokmon/<name>``: the
results are the JSON-lines service's results, byte for byte the same shapes (docs/web.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from tokmon.service import (
    INTERNAL_ERROR,
    METHOD_NOT_FOUND,
    Notification,
    Service,
    ServiceError,
)

log = logging.getLogger("tokmon.web")

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {"app.js": "text/javascript", "app.css": "text/css", "chart.umd.min.js": "text/javascript"}

# Methods that change state: POST only (a GET must never write).
POST_ONLY = {"setSessionMetadata", "refresh"}

# Query-string params that are not strings (GET /api/...); everything else stays a string.
INT_PARAMS = {"limit"}
BOOL_PARAMS = {"active", "recent"}

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

Scope = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]
]


def dumps(obj: Any) -> bytes:
    """Compact JSON as the JSON-lines service writes it."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(obj, default=str, separators=(",", ":")).encode()


class Guard:
    """Per-launch secret and allowed Host headers; ``port`` is set once the socket is bound."""

    def __init__(self, secret: str, port: int = 0) -> None:
        self.secret = secret
        self.port = port

    @property
    def cookie(self) -> str:
        return f"tokmon-web-{self.port}"

    def host_ok(self, host: str | None) -> bool:
        if not host:
            return False
        return host.lower() in {
            f"127.0.0.1:{self.port}",
            f"localhost:{self.port}",
            f"[::1]:{self.port}",
        }

    def matches(self, value: str | None) -> bool:
        return bool(value) and hmac.compare_digest(str(value).encode(), self.secret.encode())


class GuardMiddleware:
    """Refuse (403) every HTTP request without the secret or with a foreign Host header."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        req = Request(scope)
        g = self.guard
        if not g.host_ok(req.headers.get("host")):
            await _forbid("403 forbidden: unexpected Host header")(scope, receive, send)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        auth = req.headers.get("authorization", "")
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        url_token = g.matches(query.get("token"))
        if url_token and req.method == "GET" and scope["path"] == "/":
            # Jupyter's habit: trade the URL token for a cookie, drop it from the address bar
            rest = {k: v for k, v in query.items() if k != "token"}
            resp: Response = RedirectResponse(
                "/" + ("?" + urlencode(rest) if rest else ""), status_code=303
            )
            _set_cookie(resp, g)
            await resp(scope, receive, send)
            return
        if url_token or g.matches(req.cookies.get(g.cookie)) or g.matches(bearer):
            await self.app(scope, receive, send)
            return
        await _forbid("403 forbidden: open the URL `tokmon web` printed (it carries the secret)")(
            scope, receive, send
        )


def _forbid(text: str) -> Response:
    return PlainTextResponse(text + "\n", status_code=403, headers={"Cache-Control": "no-store"})


def _set_cookie(resp: Response, g: Guard) -> None:
    resp.set_cookie(g.cookie, g.secret, httponly=True, samesite="strict", path="/")


class Hub:
    """Fan-out of service notifications to every open event stream (loop thread only).

    A stream opened with ``activeDeltas`` gets pushes without the summary's
    ``activeSessions`` (it keeps the active list from the rows, docs/protocol.md); the
    service builds that list only while a stream without it is open (``service``)."""

    def __init__(self, service: Service | None = None) -> None:
        #: each open stream's queue -> whether it asked for active deltas
        self.queues: dict[asyncio.Queue[Notification | None], bool] = {}
        self.sent = 0
        self.service = service
        self._streams_changed()

    def _streams_changed(self) -> None:
        if self.service is not None:
            self.service.full_active = not all(self.queues.values())

    def _drop(self, q: asyncio.Queue[Notification | None]) -> None:
        self.queues.pop(q, None)
        self._streams_changed()

    def publish(self, notes: list[Notification]) -> None:
        for q in list(self.queues):
            for note in notes:
                try:
                    q.put_nowait(note)
                except asyncio.QueueFull:  # a stuck client: end its stream, it reconnects
                    self._drop(q)
                    while not q.empty():  # (what it missed is reloaded after the reconnect)
                        q.get_nowait()
                    q.put_nowait(None)
                    break
        self.sent += len(notes)

    def close(self) -> None:
        for q in list(self.queues):
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(None)

    async def stream(self, ping: float = 15.0, deltas: bool = False) -> AsyncIterator[bytes]:
        q: asyncio.Queue[Notification | None] = asyncio.Queue(maxsize=256)
        self.queues[q] = deltas
        self._streams_changed()
        try:
            yield b"retry: 2000\nevent: hello\ndata: {}\n\n"
            while True:
                try:
                    note = await asyncio.wait_for(q.get(), ping)
                except asyncio.TimeoutError:
                    yield b": ping\n\n"
                    continue
                if note is None:
                    return
                method, params = note
                summ = params.get("summary")
                if deltas and isinstance(summ, dict) and "activeSessions" in summ:
                    # built for a stream without deltas: this one does without the list
                    summ = {k: v for k, v in summ.items() if k != "activeSessions"}
                    params = {**params, "summary": summ}
                yield b"event: " + method.encode() + b"\ndata: " + dumps(params) + b"\n\n"
        finally:
            self._drop(q)


def _status(exc: ServiceError) -> int:
    if exc.code == METHOD_NOT_FOUND:
        return 404
    if exc.code == INTERNAL_ERROR:
        return 500
    return 400


def _json(obj: Any, status: int = 200) -> Response:
    return Response(
        dumps(obj),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def query_params(items: list[tuple[str, str]]) -> dict[str, Any]:
    """GET query string -> service params (ints and booleans by key, the rest strings)."""
    out: dict[str, Any] = {}
    for key, value in items:
        if key == "token":
            continue
        if key in INT_PARAMS:
            try:
                out[key] = int(value)
            except ValueError:
                out[key] = value  # the service says what is wrong with it
        elif key in BOOL_PARAMS:
            out[key] = value.lower() in ("1", "true", "yes", "on")
        elif key == "tokenLimit":
            out[key] = int(value) if value.isdigit() else value
        else:
            out[key] = value
    return out


def build_app(service: Service, guard: Guard, hub: Hub) -> Any:
    """The ASGI app: page, assets, ``/api/<name>`` and ``/api/events``, behind the guard."""
    index_html = (STATIC / "index.html").read_bytes()

    async def index(request: Request) -> Response:
        return Response(
            index_html, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"}
        )

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        kind = ASSETS.get(name)
        if kind is None:
            return PlainTextResponse("not found\n", status_code=404)
        return FileResponse(
            STATIC / name,
            media_type=kind,
            headers={"Cache-Control": "private, max-age=0, must-revalidate"},
        )

    async def api(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "hello":  # capabilities are per event stream here: /api/events?activeDeltas=1
            msg = "no /api/hello: open /api/events?activeDeltas=1 for pushes without the list"
            return _json({"error": {"code": METHOD_NOT_FOUND, "message": msg}}, 404)
        params: Any
        if request.method == "POST":
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                # a form post from another page cannot set this type (CSRF belt and braces)
                msg = "POST needs Content-Type: application/json"
                return _json({"error": {"code": -32600, "message": msg}}, 415)
            body = await request.body()
            if not body.strip():
                params = {}
            else:
                try:
                    params = orjson.loads(body)
                except orjson.JSONDecodeError as exc:
                    return _json({"error": {"code": -32700, "message": f"parse error: {exc}"}}, 400)
        elif name in POST_ONLY:
            return _json({"error": {"code": -32600, "message": f"use POST for /api/{name}"}}, 405)
        else:
            params = query_params(list(request.query_params.multi_items()))
        try:
            result, notes = await run_in_threadpool(service.call, f"tokmon/{name}", params)
        except ServiceError as exc:
            return _json({"error": exc.to_dict()}, _status(exc))
        if notes:
            hub.publish(notes)
        return _json(result)

    if hub.service is None:
        hub.service = service
        hub._streams_changed()

    async def events(request: Request) -> Response:
        deltas = request.query_params.get("activeDeltas", "").lower() in ("1", "true", "yes")
        return StreamingResponse(
            hub.stream(deltas=deltas),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/static/{name}", asset),
            Route("/api/events", events),
            Route("/api/{name}", api, methods=["GET", "POST"]),
        ]
    )

    async def headers_mw(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                hs = list(message.get("headers") or [])
                hs += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                message = {**message, "headers": hs}
            await send(message)

        await app(scope, receive, send_with_headers)

    return GuardMiddleware(headers_mw, guard)
