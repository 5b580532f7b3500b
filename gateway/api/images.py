"""Upload, list, read, download, delete and retry images."""

from __future__ import annotations

from datetime import UTC
from email.utils import format_datetime
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import Parameter
from litestar.response import Stream
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT
from sqlmodel import Session

from gateway.api.openapi import (
    BAD_KEY,
    BAD_QUERY,
    LOCATION_HEADER,
    MALFORMED,
    STORAGE_FAILED,
    UNKNOWN_IMAGE,
    OriginalOperation,
    UploadOperation,
)
from gateway.deps import GatewayServices, require_api_key
from gateway.errors import ImageNotFoundError, InvalidStateError
from gateway.intake.idempotency import (
    IDEMPOTENCY_HEADER,
    IdempotencyStore,
    IdempotentUploads,
    forget_image,
    idempotency_key_of,
)
from gateway.persistence.models import ImageStatus
from gateway.persistence.paging import CURSOR_PATTERN
from gateway.persistence.repository import ImageRepository
from gateway.persistence.search import MAX_QUERY_CHARS, parse_query
from gateway.schemas import ImageDetails, ImageId, ImagePage, ImageSummary, details_of, summary_of
from gateway.storage import CONTENT_TYPES, BlobNotFoundError, is_image_id
from servicekit.openapi import problem_responses
from servicekit.request_id import request_id_of


def content_disposition(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'").replace("?", "_")
    return f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


class ImagesController(Controller):
    path = "/api/images"
    tags = ["images"]

    @post(
        "/",
        status_code=HTTP_202_ACCEPTED,
        guards=[require_api_key],
        summary="Upload an image",
        description="multipart/form-data with one file in the field `image`. JPEG (MPO included) or PNG, "
        "judged by the bytes. Answers 202 at once; processing runs in the background.",
        operation_class=UploadOperation,
        response_headers=[LOCATION_HEADER],
        responses=problem_responses(
            {
                400: "Not multipart, no `image` field, two `image` parts, an empty file, or a malformed "
                "Idempotency-Key.",
                401: BAD_KEY,
                408: "The body sent nothing for GATEWAY_BODY_IDLE_TIMEOUT_S; not counted as a rejection.",
                409: "The first request with this Idempotency-Key is still in flight (or took the key from this one).",
                413: "Body over GATEWAY_MAX_UPLOAD_BYTES, or a header declaring too many pixels.",
                415: "Not JPEG or PNG by its leading bytes.",
                422: "JPEG/PNG leading bytes but a header that cannot be parsed, or an Idempotency-Key already "
                "used with other file bytes.",
                503: STORAGE_FAILED,
            }
        ),
    )
    async def upload(
        self, request: Request[Any, Any, Any], services: NamedDependency[GatewayServices]
    ) -> Response[ImageSummary]:
        settings, headers = services.settings, request.headers
        key = idempotency_key_of(headers.get(IDEMPOTENCY_HEADER), headers.get("authorization"), settings.api_key)
        arguments = (request.stream(), request.content_type, request_id_of(request.scope))
        if key is None:
            summary = summary_of(await services.uploads.accept(*arguments))
        else:
            store = IdempotencyStore(services.database, settings.idempotency_ttl_h)
            summary = await IdempotentUploads(store, services.uploads).accept(key, *arguments)
        services.worker.notify()
        return Response(summary, status_code=HTTP_202_ACCEPTED, headers={"Location": f"{self.path}/{summary.id}"})

    @get(
        "/",
        summary="List images, newest first; search captions with q",
        description="With `q`, only images whose caption holds every word of `q` (case, accents and simple "
        "English inflections do not matter: `dogs` finds `dog`), still newest first and paged the same way.",
        responses=problem_responses(
            {400: BAD_QUERY + " A q longer than 200 characters or without a letter or digit.", 503: STORAGE_FAILED}
        ),
    )
    async def list_images(
        self,
        services: NamedDependency[GatewayServices],
        status: Annotated[ImageStatus | None, Parameter(description="Only images in this status.")] = None,
        limit: Annotated[int, Parameter(ge=1, le=500, description="Page size, 1..500.")] = 50,
        cursor: Annotated[
            str | None,
            Parameter(
                description="next_cursor of the previous page, passed back unchanged; empty means the first page.",
                schema_extra={"pattern": CURSOR_PATTERN},
            ),
        ] = None,
        q: Annotated[
            str | None,
            Parameter(
                description=f"Only images whose caption holds every word of q (AND), at most {MAX_QUERY_CHARS} "
                "characters. Plain words: punctuation and operators separate words, and a q with no letter or digit "
                "is a 400; blank means the plain list.",
                schema_extra={"maxLength": MAX_QUERY_CHARS},
            ),
        ] = None,
    ) -> ImagePage:
        cursor = cursor or None
        page = await services.catalog.page(status, limit, cursor, parse_query(q))
        return ImagePage(items=[summary_of(image) for image in page.items], next_cursor=page.next_cursor)

    @get(
        "/{image_id:str}",
        summary="Image details",
        responses=problem_responses({400: MALFORMED, 404: UNKNOWN_IMAGE, 503: STORAGE_FAILED}),
    )
    async def get_image(self, services: NamedDependency[GatewayServices], image_id: ImageId) -> ImageDetails:
        return details_of(await services.catalog.load(image_id))

    @get(
        "/{image_id:str}/original",
        summary="The uploaded bytes, with their own content type",
        operation_class=OriginalOperation,
        responses=problem_responses(
            {400: MALFORMED, 404: UNKNOWN_IMAGE + " Also when the original is no longer stored.", 503: STORAGE_FAILED}
        ),
    )
    async def get_original(self, services: NamedDependency[GatewayServices], image_id: ImageId) -> Stream:
        image = await services.catalog.load(image_id)
        try:
            blob = await services.storage.open_original(image.id, image.format)
        except BlobNotFoundError as exc:
            raise ImageNotFoundError(f"The original of image {image_id} is no longer stored.") from exc
        headers = {
            "Content-Disposition": content_disposition(image.filename),
            "Content-Length": str(blob.info.size_bytes),
            "Last-Modified": format_datetime(blob.info.modified_at.astimezone(UTC), usegmt=True),
        }
        return Stream(blob.chunks, media_type=CONTENT_TYPES[image.format], headers=headers)

    @delete(
        "/{image_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        guards=[require_api_key],
        summary="Delete an image and every file of it",
        responses=problem_responses({400: MALFORMED, 401: BAD_KEY, 404: UNKNOWN_IMAGE, 503: STORAGE_FAILED}),
    )
    async def delete_image(self, services: NamedDependency[GatewayServices], image_id: ImageId) -> None:
        if not is_image_id(image_id):
            raise ImageNotFoundError(f"'{image_id[:64]}' is not an image id.")
        # Marked first: a crash after the row is gone still leaves the sweeper a mark for the blobs.
        await services.storage.mark_for_sweep(image_id)

        def delete_row(session: Session) -> bool:
            forget_image(session, image_id)
            return ImageRepository(session).delete(image_id)

        deleted = await services.database.write(delete_row)
        if not deleted:
            raise ImageNotFoundError(f"No image with id {image_id}.")
        await services.storage.delete_image(image_id)

    @post(
        "/{image_id:str}/retry",
        status_code=HTTP_202_ACCEPTED,
        guards=[require_api_key],
        summary="Re-queue a failed image",
        responses=problem_responses(
            {400: MALFORMED, 401: BAD_KEY, 404: UNKNOWN_IMAGE, 409: "The image is not failed.", 503: STORAGE_FAILED}
        ),
    )
    async def retry_image(self, services: NamedDependency[GatewayServices], image_id: ImageId) -> ImageSummary:
        image = await services.catalog.load(image_id)
        requeued = await services.catalog.requeue_failed(image_id)
        if not requeued:
            raise InvalidStateError(f"Only a failed image can be retried; image {image_id} is {image.status}.")
        services.metrics.requeued.labels("retry").inc()
        summary = summary_of(await services.catalog.load(image_id))
        services.worker.notify()
        return summary
