"""The one place where exceptions become RFC 9457 problem+json responses."""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from contracts.problem import PROBLEM_MEDIA_TYPE, Problem
from gateway.errors import GatewayError, StorageUnavailableError, UploadAbortedError

log = structlog.get_logger("gateway.problems")
PROBLEM_TYPE_PREFIX = "urn:image-pipeline:problem:"
STORAGE_RETRY_AFTER_S = 5


def problem_response(
    status: int,
    title: str,
    detail: str,
    slug: str,
    retry_after_s: float | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[dict[str, Any]]:
    problem = Problem(type=PROBLEM_TYPE_PREFIX + slug, title=title, status=status, detail=detail, **extra)
    headers = dict(headers or {})
    if retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    return Response(
        problem.model_dump(exclude_none=True), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def handle_gateway_error(_request: Request[Any, Any, Any], exc: GatewayError) -> Response[dict[str, Any]]:
    retry_after_s = exc.retry_after_s
    if isinstance(exc, StorageUnavailableError) and retry_after_s is None:
        retry_after_s = STORAGE_RETRY_AFTER_S
    if exc.status >= 500:
        log.warning("request_failed", status=exc.status, error=exc.detail)
    # The unread rest of a stalled or abandoned body makes the connection useless: close it.
    headers = {"Connection": "close"} if isinstance(exc, UploadAbortedError) else None
    return problem_response(exc.status, exc.title, exc.detail, exc.type_slug, retry_after_s, headers)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    detail = exc.detail if exc.detail and exc.detail != title else f"{title}."
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationException) and exc.extra:
        extra["errors"] = exc.extra
        detail = _validation_sentence(exc.extra) or detail
    slug = title.lower().replace(" ", "-")
    headers = {name.title(): value for name, value in (exc.headers or {}).items()}
    retry_after = headers.pop("Retry-After", None)
    if "Allow" in headers:
        headers["Allow"] = _allow_with_head(headers["Allow"])
        detail = f"{request.method} is not allowed here; allowed: {headers['Allow']}."
    return problem_response(status, title, detail, slug, float(retry_after) if retry_after else None, headers, **extra)


def _allow_with_head(allow: str) -> str:
    """Litestar lists the route's methods; HEAD is served wherever GET is (``head_support``)."""
    methods = [method.strip() for method in allow.split(",") if method.strip()]
    if "GET" in methods and "HEAD" not in methods:
        methods.append("HEAD")
    return ", ".join(sorted(methods))


def handle_os_error(_request: Request[Any, Any, Any], exc: OSError) -> Response[dict[str, Any]]:
    log.error("storage_failed", error=str(exc))
    return problem_response(
        503,
        "Storage unavailable",
        "The disk could not be used; nothing was kept.",
        "storage-unavailable",
        STORAGE_RETRY_AFTER_S,
    )


def handle_unexpected(_request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    return problem_response(500, "Internal error", "An unexpected error occurred; it has been logged.", "internal")


def _validation_sentence(errors: Any) -> str | None:
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return None
    first = errors[0]
    key, message = first.get("key"), first.get("message")
    if key and message:
        return f"Invalid value for '{key}': {message}."
    return None


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    GatewayError: handle_gateway_error,
    HTTPException: handle_http_exception,
    OSError: handle_os_error,
    Exception: handle_unexpected,
}
