"""The one place where exceptions become RFC 9457 problem+json responses."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap

from gateway.errors import GatewayError, StorageUnavailableError, UploadAbortedError
from servicekit.problems import handle_http_exception, handle_unexpected, problem_of, problem_response

log = structlog.get_logger("gateway.problems")
STORAGE_RETRY_AFTER_S = 5


def handle_gateway_error(request: Request[Any, Any, Any], exc: GatewayError) -> Response[dict[str, Any]]:
    if exc.status >= 500:
        log.warning("request_failed", status=exc.status, error=exc.detail)
    # The unread rest of a stalled or abandoned body makes the connection useless: close it.
    headers = {"Connection": "close"} if isinstance(exc, UploadAbortedError) else None
    retry_after_s = STORAGE_RETRY_AFTER_S if isinstance(exc, StorageUnavailableError) else None
    return problem_of(request, exc, retry_after_s=retry_after_s, headers=headers)


def handle_os_error(request: Request[Any, Any, Any], exc: OSError) -> Response[dict[str, Any]]:
    log.error("storage_failed", error=str(exc))
    return problem_response(
        request,
        503,
        "Storage unavailable",
        "The disk could not be used; nothing was kept.",
        "storage-unavailable",
        STORAGE_RETRY_AFTER_S,
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    GatewayError: handle_gateway_error,
    HTTPException: handle_http_exception,
    OSError: handle_os_error,
    Exception: handle_unexpected,
}
