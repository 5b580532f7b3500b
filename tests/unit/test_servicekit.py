"""The code both services share: request ids and problem rendering, on a bare Litestar app."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, Request, get
from litestar.exceptions import HTTPException, ValidationException
from litestar.testing import TestClient

from servicekit.problems import handle_http_exception, handle_unexpected
from servicekit.request_id import request_id_middleware, request_id_of
from servicekit.sniffing import sniff_format
from tests.support import problem_of


@get("/id", sync_to_thread=False)
def echo_request_id(request: Request[Any, Any, Any]) -> str:
    return request_id_of(request.scope)


def bare_app(*handlers: Any) -> Litestar:
    app = Litestar(
        [echo_request_id, *handlers],
        exception_handlers={HTTPException: handle_http_exception, Exception: handle_unexpected},
        logging_config=None,
    )
    app.asgi_handler = request_id_middleware(app.asgi_handler)
    return app


@pytest.mark.parametrize("supplied", [b"has spaces", b"x" * 129, "ünïcode".encode(), b"a;b", b""])
def test_an_unsafe_or_missing_request_id_is_replaced_by_a_fresh_one(supplied: bytes) -> None:
    with TestClient(bare_app()) as client:
        response = client.get("/id", headers={"X-Request-ID": supplied})
    assert response.headers["x-request-id"] == response.text
    assert len(response.text) == 32 and response.text.encode() != supplied


def test_a_sane_request_id_is_kept_and_handed_to_the_handler() -> None:
    with TestClient(bare_app()) as client:  # the lifespan scope passes through the middleware untouched
        response = client.get("/id", headers={"X-Request-ID": "trace-1.a:b_c"})
    assert (response.text, response.headers["x-request-id"]) == ("trace-1.a:b_c", "trace-1.a:b_c")


@pytest.mark.parametrize(
    ("exc", "status", "detail", "retry_after"),
    [
        (ValidationException(extra=[{"key": "limit", "message": "too big"}]), 400,
         "Invalid value for 'limit': too big.", None),
        (ValidationException(extra={"not": "a list"}), 400, "Bad Request.", None),
        (ValidationException(extra=[{"message": "no key"}]), 400, "Bad Request.", None),
        (HTTPException(status_code=503, detail="busy", headers={"Retry-After": "7"}), 503, "busy", "7"),
        (HTTPException(status_code=599, detail="odd"), 599, "odd", None),
        (RuntimeError("secret internals"), 500, "An unexpected error occurred; it has been logged.", None),
    ],
)  # fmt: skip
def test_exceptions_become_problems(exc: Exception, status: int, detail: str, retry_after: str | None) -> None:
    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        raise exc

    with TestClient(bare_app(boom)) as client:
        response = client.get("/boom")
    assert response.status_code == status
    assert problem_of(response)["detail"] == detail
    assert response.headers.get("retry-after") == retry_after


@pytest.mark.parametrize(
    ("head", "expected"), [(b"\xff\xd8\xff\xe0", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8", None)]
)
def test_sniffing_reads_only_the_leading_bytes(head: bytes, expected: str | None) -> None:
    assert sniff_format(head + b"rest") == expected
