"""OpenAPI additions the handlers cannot infer: bodies read by hand, problem responses, binary answers.

The published schema must say what ``docs/API.md`` says: every error is problem+json with
its status, the upload is multipart, originals and thumbnails are image bytes, and the headers
users rely on (``Location``, ``X-Caption``, ``ETag``, ``Retry-After``...) are declared.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.datastructures import ResponseHeader
from litestar.enums import ParamType
from litestar.openapi.spec import (
    Encoding,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
)

from servicekit.openapi import RETRY_AFTER

BINARY = Schema(type=OpenAPIType.STRING, format="binary")  # type: ignore[arg-type]
UPLOAD_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    properties={
        # An empty file is a 400; the part's media type (below) says which bytes are taken.
        "image": Schema(type=OpenAPIType.STRING, format="binary", min_length=1, description="A JPEG or PNG file.")  # type: ignore[arg-type]
    },
    required=["image"],
)
# The bytes decide (the part's declared Content-Type is ignored): JPEG (MPO included) or PNG.
UPLOAD_ENCODING = {"image": Encoding(content_type="image/jpeg, image/png")}
THUMBNAIL_INFO_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    properties={
        "id": Schema(type=OpenAPIType.STRING),
        "size": Schema(type=OpenAPIType.STRING, enum=["small", "medium"]),
        "url": Schema(type=OpenAPIType.STRING),
        "width": Schema(type=OpenAPIType.INTEGER),
        "height": Schema(type=OpenAPIType.INTEGER),
        "caption": Schema(
            one_of=[Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.NULL)],
            description="null while captioning has not finished",
        ),
    },
    required=["id", "size", "url", "width", "height", "caption"],
)
# Litestar's File documents Last-Modified as date-time; it sends an HTTP date (RFC 9110 IMF-fixdate).
ORIGINAL_HEADERS: dict[str, OpenAPIHeader | Reference] = {
    "Content-Length": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING, pattern=r"^[0-9]+$"), description="Bytes."),
    "Last-Modified": OpenAPIHeader(
        schema=Schema(type=OpenAPIType.STRING), description="HTTP date, e.g. `Tue, 01 Dec 2026 10:00:00 GMT`."
    ),
    "ETag": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING), description="Entity tag of the stored file."),
    "Content-Disposition": OpenAPIHeader(
        schema=Schema(type=OpenAPIType.STRING), description="inline, with the display file name."
    ),
}
IDEMPOTENCY_KEY_PARAMETER = Parameter(
    name="Idempotency-Key",
    param_in=ParamType.HEADER,
    required=False,
    description="Any unique string (a UUID, or the file's sha256 and path): the same key with the same file "
    "bytes answers the first 202 again without a new image; other bytes are 422; in flight 409. Kept 24 h.",
    schema=Schema(type=OpenAPIType.STRING, pattern=r"^[\x21\x23-\x7e]{1,255}$"),
)

# What each status means, endpoint by endpoint (API.md).
STORAGE_FAILED = "The database or the disk failed; nothing half-written stays behind."
BAD_KEY = "GATEWAY_API_KEY is set and the bearer token is missing or wrong."
UNKNOWN_IMAGE = "No image with this id, or a malformed id."
BAD_QUERY = "An invalid query value: a limit outside 1..500, an unknown status, a malformed cursor."
MALFORMED = "A malformed request parameter."

LOCATION_HEADER = ResponseHeader(
    name="Location", description="/api/images/{id}: where the image's details are.", documentation_only=True
)
THUMBNAIL_HEADERS = [
    ResponseHeader(
        name="X-Caption",
        description="The caption, percent-encoded UTF-8; absent while none exists (JPEG answers only).",
        documentation_only=True,
    ),
    ResponseHeader(name="ETag", description="Covers the bytes and the caption.", documentation_only=True),
    ResponseHeader(name="Vary", description="Accept", documentation_only=True),
    ResponseHeader(
        name="Cache-Control",
        description="no-cache while the caption may still change; long-lived once the image is final.",
        documentation_only=True,
    ),
]


@dataclass
class UploadOperation(Operation):
    """``POST /api/images`` reads its multipart body itself (streamed to disk), so describe it here."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={"multipart/form-data": OpenAPIMediaType(schema=UPLOAD_SCHEMA, encoding=UPLOAD_ENCODING)},
            required=True,
            description="Exactly one file in the field `image`.",
        )
        self.parameters = [*(self.parameters or []), IDEMPOTENCY_KEY_PARAMETER]


@dataclass
class OriginalOperation(Operation):
    """The original comes back with its own content type."""

    def __post_init__(self) -> None:
        success = _response(self, "200")
        if success is not None:
            success.content = {media: OpenAPIMediaType(schema=BINARY) for media in ("image/jpeg", "image/png")}
            success.headers = ORIGINAL_HEADERS


@dataclass
class ThumbnailOperation(Operation):
    """JPEG bytes by default, JSON with ``Accept: application/json``; 409 carries ``Retry-After``."""

    def __post_init__(self) -> None:
        success = _response(self, "200")
        if success is not None:
            success.content = {
                "image/jpeg": OpenAPIMediaType(schema=BINARY),
                "application/json": OpenAPIMediaType(schema=THUMBNAIL_INFO_SCHEMA),
            }
        not_ready = _response(self, "409")
        if not_ready is not None:
            not_ready.headers = {"Retry-After": RETRY_AFTER}


def _response(operation: Operation, status: str) -> OpenAPIResponse | None:
    response = (operation.responses or {}).get(status)
    return response if isinstance(response, OpenAPIResponse) else None
