"""RFC 9457 problem+json responses, rendered the same way by both services.

Each service keeps its own domain errors (``servicekit.errors.ServiceError`` subclasses) and its one
exception map; ``problem_of``, ``handle_http_exception`` and ``handle_unexpected`` are what both
maps use. Litestar's ``ProblemDetailsException`` renders every body (``problem_response``). Its
``ProblemDetailsPlugin`` is not used as the map: its converters see the exception but not the
request (the inference service counts its caption answers by path, both services log), and its
``HTTPException`` conversion drops the list of validation errors and the HEAD in ``Allow`` that
``handle_http_exception`` adds.
"""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import ProblemDetailsException

from contracts.problem import PROBLEM_TYPE_PREFIX, Problem
from servicekit.errors import ServiceError

log = structlog.get_logger("servicekit.problems")


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    title: str,
    detail: str,
    slug: str,
    retry_after_s: float | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[dict[str, Any]]:
    """A problem+json response; ``retry_after_s`` becomes a whole-second ``Retry-After`` (at least 1)."""
    problem = Problem(type=PROBLEM_TYPE_PREFIX + slug, title=title, status=status, detail=detail, **extra)
    headers = dict(headers or {})
    if retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    members = problem.model_dump(exclude_none=True, exclude={"type", "title", "status", "detail"})
    return ProblemDetailsException(
        type_=problem.type, title=title, status_code=status, detail=detail, headers=headers, extra=members
    ).to_response(request)


def problem_of(
    request: Request[Any, Any, Any],
    exc: ServiceError,
    *,
    retry_after_s: float | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    """The answer to a domain error: its status, title, sentence, type, extensions and Retry-After."""
    retry_after_s = exc.retry_after_s if exc.retry_after_s is not None else retry_after_s
    return problem_response(
        request, exc.status, exc.title, exc.detail, exc.type_slug, retry_after_s, headers, **exc.extensions
    )


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    """Litestar's own errors (404, 405, 413, invalid parameters...) as problems; validation errors listed.

    A 405 keeps Litestar's ``Allow`` (plus HEAD wherever GET is, see ``head_as_get``) and names it.
    """
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
    return problem_response(
        request, status, title, detail, slug, float(retry_after) if retry_after else None, headers, **extra
    )


def _allow_with_head(allow: str) -> str:
    """Litestar lists the route's methods; HEAD is served wherever GET is."""
    methods = [method.strip() for method in allow.split(",") if method.strip()]
    if "GET" in methods and "HEAD" not in methods:
        methods.append("HEAD")
    return ", ".join(sorted(methods))


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """A 500 that names no internals; the exception and its traceback go to the log."""
    log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    return problem_response(
        request, 500, "Internal error", "An unexpected error occurred; it has been logged.", "internal"
    )


def _validation_sentence(errors: Any) -> str | None:
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return None
    first = errors[0]
    key, message = first.get("key"), first.get("message")
    if key and message:
        return f"Invalid value for '{key}': {message}."
    return None
