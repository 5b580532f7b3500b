"""OpenAPI additions for ``POST /v1/captions``: its raw image body and its problem responses."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, RequestBody
from litestar.openapi.spec import Schema as OpenAPISchema

from contracts.captions import CAPTIONS_PATH, ReadinessResponse
from servicekit.openapi import RETRY_AFTER, problem_responses

IMAGE_BYTES = OpenAPISchema(type=OpenAPIType.STRING, format="binary")  # type: ignore[arg-type]
CAPTION_PROBLEMS = {
    400: "An empty body, a prompt over 500 characters, or a bad max_new_tokens.",
    413: "The body is over INFERENCE_MAX_BODY_BYTES or the image has too many pixels.",
    415: "Not a JPEG or PNG.",
    422: "JPEG/PNG bytes that cannot be decoded, or max_new_tokens (with the prompt) beyond the model's positions"
    " (`max_new_tokens_limit` in /v1/model).",
    503: "The model is loading, the queue is full, or the caption timed out (Retry-After); or the model failed"
    ' to load (`state: "failed"`, no Retry-After: retrying soon will not help).',
}
NOT_READY = {
    503: ResponseSpec(
        data_container=ReadinessResponse,
        description='Not ready: the model is loading (Retry-After), or it failed to load (`state: "failed"`).',
    )
}


def caption_problems() -> dict[int, ResponseSpec]:
    return problem_responses(CAPTION_PROBLEMS)


@dataclass
class CaptionOperation(Operation):
    """The body is the raw image; a 503 carries ``Retry-After``."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={media: OpenAPIMediaType(schema=IMAGE_BYTES) for media in ("image/jpeg", "image/png")},
            required=True,
            description="The raw JPEG or PNG bytes (not multipart).",
        )
        busy = (self.responses or {}).get("503")
        if isinstance(busy, OpenAPIResponse):
            busy.headers = {"Retry-After": RETRY_AFTER}


class ServedModelSchemaPlugin(JsonRenderPlugin):
    """``openapi.json`` whose ``max_new_tokens`` maximum is that of the model now served.

    The API's bound is ``MAX_NEW_TOKENS_LIMIT``; a model with fewer decoder positions serves fewer
    (``max_new_tokens_limit`` in /v1/model) and answers more with a 422. Once the model is loaded,
    the schema says its limit, so a value the schema calls valid is one this service serves (a
    prompt's tokens take positions too, which a schema cannot count: the 422 says so).
    """

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        services = getattr(request.app.state, "services", None)
        description = services.model.description if services is not None else None
        limit = description.max_new_tokens_limit if description is not None else None
        if limit is not None:
            openapi_schema = with_max_new_tokens_bound(openapi_schema, limit)
        return super().render(request, openapi_schema)


def with_max_new_tokens_bound(openapi_schema: dict[str, Any], limit: int) -> dict[str, Any]:
    """A copy of the schema in which ``max_new_tokens`` of ``POST /v1/captions`` is at most ``limit``."""
    bounded = copy.deepcopy(openapi_schema)
    for parameter in bounded["paths"][CAPTIONS_PATH]["post"]["parameters"]:
        if parameter["name"] == "max_new_tokens":
            parameter["schema"]["maximum"] = limit
    return bounded
