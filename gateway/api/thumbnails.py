"""Thumbnails with content negotiation: JPEG bytes + ``X-Caption``, or JSON."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from gateway.api.openapi import (
    MALFORMED,
    STORAGE_FAILED,
    THUMBNAIL_HEADERS,
    UNKNOWN_IMAGE,
    ThumbnailOperation,
)
from gateway.deps import GatewayServices
from gateway.errors import ImageNotFoundError, ThumbnailNotAvailableError, ThumbnailNotReadyError
from gateway.persistence.models import Image, ImageStatus, RecaptionStatus
from gateway.schemas import ImageId, ThumbnailInfo, image_links
from gateway.storage import BlobNotFoundError
from servicekit.openapi import problem_responses

NOT_READY_RETRY_AFTER_S = 2.0
THUMBNAIL_SIZES = ["small", "medium"]
FINAL_CACHE_CONTROL = "public, max-age=31536000, immutable"


def _caption_final(image: Image) -> bool:
    """Completed and not queued for re-captioning: the caption in ``X-Caption`` will not change."""
    return image.status == ImageStatus.COMPLETED and image.recaption_status != RecaptionStatus.QUEUED


def _dimensions(image: Image, size: str) -> tuple[int, int] | None:
    width, height = getattr(image, f"{size}_width"), getattr(image, f"{size}_height")
    return (width, height) if width is not None and height is not None else None


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "image/jpeg" not in accept


def _etag(image: Image, size: str, as_json: bool) -> str:
    parts = [image.sha256, size, image.caption_text or "", "json" if as_json else "jpeg", str(_dimensions(image, size))]
    return '"' + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32] + '"'


class ThumbnailsController(Controller):
    path = "/api/images/{image_id:str}/thumbnails"
    tags = ["thumbnails"]

    @get(
        "/{size:str}",
        summary="A thumbnail (small fits 160x160, medium fits 640x640)",
        description="JPEG bytes with the caption in `X-Caption` (percent-encoded UTF-8), or JSON with "
        "`Accept: application/json`. 409 with Retry-After while it is being made.",
        media_type="image/jpeg",
        operation_class=ThumbnailOperation,
        response_headers=THUMBNAIL_HEADERS,
        responses=problem_responses(
            {
                400: MALFORMED,
                404: UNKNOWN_IMAGE + " Also a size other than small/medium, or an image that failed before "
                "its thumbnails were made (the detail says why).",
                409: "The image is pending or processing and this thumbnail is not made yet.",
                503: STORAGE_FAILED,
            }
        )
        | {304: ResponseSpec(data_container=None, description="Not modified: If-None-Match matched the ETag.")},
    )
    async def get_thumbnail(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[GatewayServices],
        image_id: ImageId,
        size: Annotated[
            str, Parameter(description="small or medium; another value is 404.", schema_extra={"enum": THUMBNAIL_SIZES})
        ],
    ) -> Response[Any]:
        if size not in THUMBNAIL_SIZES:
            raise ImageNotFoundError(f"There is no thumbnail size '{size[:32]}'; use small or medium.")
        image = await services.catalog.load(image_id)
        dimensions = _dimensions(image, size)
        if dimensions is None:
            if image.status in (ImageStatus.PENDING, ImageStatus.PROCESSING):
                raise ThumbnailNotReadyError(
                    f"The {size} thumbnail of image {image_id} is not made yet; retry shortly.",
                    retry_after_s=NOT_READY_RETRY_AFTER_S,
                )
            raise ThumbnailNotAvailableError(
                f"Image {image_id} has no thumbnails: it failed before they were made ({image.error})."
            )
        as_json = _wants_json(request)
        etag = _etag(image, size, as_json)
        headers = {
            "ETag": etag,
            "Vary": "Accept",
            "Cache-Control": FINAL_CACHE_CONTROL if _caption_final(image) else "no-cache",
        }
        if image.caption_text is not None:
            headers["X-Caption"] = quote(image.caption_text, safe=" ")
        if etag in request.headers.get("if-none-match", ""):
            return Response(content=b"", status_code=304, headers=headers)
        url = getattr(image_links(image.id).thumbnails, size)
        if as_json:
            info = ThumbnailInfo(
                id=image.id, size=size, url=url, width=dimensions[0], height=dimensions[1], caption=image.caption_text
            )
            return Response(info, media_type="application/json", headers=headers)
        try:
            data = await services.storage.read_thumbnail(image.id, "small" if size == "small" else "medium")
        except BlobNotFoundError as exc:
            raise ImageNotFoundError(f"The {size} thumbnail of image {image_id} is no longer stored.") from exc
        return Response(content=data, media_type="image/jpeg", headers=headers)
