"""OpenAPI additions the handlers cannot infer: the multipart upload body and problem responses."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from contracts.problem import PROBLEM_MEDIA_TYPE, Problem

UPLOAD_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    properties={"image": Schema(type=OpenAPIType.STRING, format="binary", description="A JPEG or PNG file.")},  # type: ignore[arg-type]
    required=["image"],
)


@dataclass
class UploadOperation(Operation):
    """``POST /api/images`` reads its multipart body itself (streamed to disk), so describe it here."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={"multipart/form-data": OpenAPIMediaType(schema=UPLOAD_SCHEMA)},
            required=True,
            description="Exactly one file in the field `image`.",
        )


def problem_responses(descriptions: dict[int, str]) -> dict[int, ResponseSpec]:
    """``responses=`` entries whose body is an RFC 9457 problem."""
    return {
        status: ResponseSpec(
            data_container=Problem, description=text, media_type=PROBLEM_MEDIA_TYPE, generate_examples=False
        )
        for status, text in descriptions.items()
    }
