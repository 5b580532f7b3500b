"""The one place where the inference service turns exceptions into problem+json responses."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap

from contracts.captions import CAPTIONS_PATH
from inference.errors import InferenceServiceError
from servicekit.problems import handle_http_exception as render_http_exception
from servicekit.problems import handle_unexpected, problem_of

log = structlog.get_logger("inference.problems")


def _count(request: Request[Any, Any, Any], status: int) -> None:
    services = getattr(request.app.state, "services", None)
    if services is not None and request.url.path == CAPTIONS_PATH:
        services.metrics.requests.labels(str(status)).inc()


def handle_service_error(request: Request[Any, Any, Any], exc: InferenceServiceError) -> Response[dict[str, Any]]:
    _count(request, exc.status)
    log.warning("request_failed", path=request.url.path, status=exc.status, error=exc.detail)
    return problem_of(request, exc)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    _count(request, exc.status_code)
    log.warning("request_failed", path=request.url.path, status=exc.status_code, error=str(exc.detail))
    return render_http_exception(request, exc)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    InferenceServiceError: handle_service_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
