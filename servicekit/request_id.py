"""X-Request-ID: taken from the client (when sane) or made, bound to logs, echoed on every response."""

from __future__ import annotations

import re
import uuid

import structlog
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def request_id_of(scope: Scope) -> str:
    """The id the middleware stored for this request."""
    return str(scope.get("state", {}).get("request_id", ""))


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Wrap ``app.asgi_handler`` with it: Litestar runs app-level middleware only for matched routes,
    and 404/405 answers (and their logs) need a request id too."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        supplied = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"x-request-id"), "")
        request_id = supplied if _SAFE_REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await app(scope, receive, send_with_id)

    return middleware


def head_as_get(app: ASGIApp) -> ASGIApp:
    """Answer ``HEAD`` wherever ``GET`` is routed: the GET handler runs, its headers go out, its body does not.

    Content-Length, ETag, X-Caption... are the GET's own, so a client can probe an original or a
    thumbnail cheaply. A route without GET answers 405 with ``Allow``, as for any other method.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "HEAD":
            await app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await app({**scope, "method": "GET"}, receive, send_headers_only)

    return middleware


def options_allow_all(app: ASGIApp) -> ASGIApp:
    """Answer ``OPTIONS`` with every method of the path in ``Allow``.

    Litestar's own OPTIONS answer lists only the methods of one controller's route, so ``GET`` and
    ``POST /api/images`` would each hide the other. The router's 405 knows them all: ask it with a
    method no route has, and answer 204 with its ``Allow`` (404 and the like pass through).
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "OPTIONS":
            await app(scope, receive, send)
            return
        allow: list[str] = []

        async def capture_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allow.extend(MutableScopeHeaders.from_message(message).getall("allow", []))

        await app({**scope, "method": "ALLOW-PROBE"}, receive, capture_allow)  # type: ignore[typeddict-item]
        if not allow:
            await app(scope, receive, send)
            return
        headers = [(b"allow", allow[0].encode("latin-1")), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return middleware
