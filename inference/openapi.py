"""OpenAPI additions for ``POST /v1/captions``: its raw image body and its problem responses."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, RequestBody
from litestar.openapi.spec import Schema as OpenAPISchema

from contracts.captions import ReadinessResponse
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
