"""The one place where the inference service turns exceptions into problem+json responses."""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap

from contracts.captions import CAPTIONS_PATH
from contracts.problem import PROBLEM_MEDIA_TYPE, Problem
from inference.errors import InferenceServiceError

log = structlog.get_logger("inference.problems")
TYPE_PREFIX = "urn:image-pipeline:problem:"


def _problem(status: int, title: str, detail: str, slug: str, retry_after_s: float | None) -> Response[Any]:
    body = Problem(type=TYPE_PREFIX + slug, title=title, status=status, detail=detail).model_dump(exclude_none=True)
    headers = {"Retry-After": str(max(1, math.ceil(retry_after_s)))} if retry_after_s is not None else {}
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _count(request: Request[Any, Any, Any], status: int) -> None:
    services = getattr(request.app.state, "services", None)
    if services is not None and request.url.path == CAPTIONS_PATH:
        services.metrics.requests.labels(str(status)).inc()


def handle_service_error(request: Request[Any, Any, Any], exc: InferenceServiceError) -> Response[Any]:
    _count(request, exc.status)
    log.warning("request_failed", path=request.url.path, status=exc.status, error=exc.detail)
    return _problem(exc.status, exc.title, exc.detail, exc.type_slug, exc.retry_after_s)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    _count(request, status)
    log.warning("request_failed", path=request.url.path, status=status, error=str(exc.detail))
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    detail = exc.detail if exc.detail and exc.detail != title else f"{title}."
    return _problem(status, title, detail, title.lower().replace(" ", "-"), None)


def handle_unexpected(_request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    return _problem(500, "Internal error", "An unexpected error occurred; it has been logged.", "internal", None)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    InferenceServiceError: handle_service_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
