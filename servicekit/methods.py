"""HEAD and OPTIONS the same way in both services: HEAD runs the GET handler with the body dropped,
OPTIONS lists every method of a path. Both wrap the app's ASGI handler, so unmatched paths get them too."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send


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
