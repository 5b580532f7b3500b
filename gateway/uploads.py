"""Accepting an upload: stream the multipart body to an id-named spool, validate, commit.

Cheap and synchronous: the body is hashed while it streams to disk, the format is judged by
the leading bytes, the header is parsed (no pixel data decoded), then the file is moved into
place and the row committed. Every refusal is counted by reason and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
import structlog
from litestar.exceptions.http_exceptions import InternalServerException, RequestEntityTooLarge
from multipart import ParserError, ParserLimitReached, PushMultipartParser

from gateway.db import Database
from gateway.errors import BadUploadError, UploadRejectedError, UploadTooLargeError
from gateway.imaging import SNIFF_BYTES, ensure_supported, read_header
from gateway.metrics import GatewayMetrics
from gateway.models import Image, RejectionReason
from gateway.repository import ImageRepository
from gateway.settings import GatewaySettings
from gateway.storage import ImageStorage, new_image_id

IMAGE_FIELD = "image"
MAX_FILENAME_CHARS = 255
MAX_PARTS = 16
log = structlog.get_logger("gateway.uploads")


@dataclass(frozen=True)
class ReceivedFile:
    filename: str
    size_bytes: int
    sha256: str
    head: bytes


def display_filename(raw: str | None) -> str:
    """The client's name reduced to a safe display string: last path component, printable, bounded."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if ch.isprintable()).strip()
    return name[:MAX_FILENAME_CHARS] or "upload"


async def receive_image_part(
    body: AsyncIterator[bytes], content_type: tuple[str, dict[str, str]], spool: Path
) -> ReceivedFile:
    """Stream the single ``image`` part of a multipart body into ``spool``, hashing as it goes."""
    media_type, options = content_type
    boundary = options.get("boundary")
    if media_type != "multipart/form-data" or not boundary:
        raise BadUploadError(f"Send multipart/form-data with the file in the field '{IMAGE_FIELD}'.")
    digest, size, head = hashlib.sha256(), 0, b""
    filename: str | None = None
    images_seen, in_image = 0, False
    try:
        with PushMultipartParser(boundary, max_segment_count=MAX_PARTS) as parser, spool.open("wb") as sink:
            async for chunk in body:
                for event in parser.parse(chunk):
                    if event is None:
                        in_image = False
                    elif isinstance(event, (bytes, bytearray, memoryview)):
                        if in_image:
                            digest.update(event)
                            sink.write(event)
                            if len(head) < SNIFF_BYTES:
                                head += bytes(event[: SNIFF_BYTES - len(head)])
                            size += len(event)
                    elif event.name == IMAGE_FIELD:
                        images_seen += 1
                        if images_seen > 1:
                            raise BadUploadError(f"Send exactly one file in the field '{IMAGE_FIELD}'; got several.")
                        in_image, filename = True, event.filename
                if parser.closed:
                    break
    except RequestEntityTooLarge as exc:
        raise UploadTooLargeError("The request body is larger than the upload limit.") from exc
    except (ParserError, ParserLimitReached) as exc:
        raise BadUploadError(f"The multipart body cannot be parsed: {exc}.") from exc
    except InternalServerException as exc:
        raise BadUploadError("The client disconnected before the upload finished.") from exc
    if images_seen == 0:
        raise BadUploadError(f"The form has no field '{IMAGE_FIELD}'; send the file as image=@photo.jpg.")
    if size == 0:
        raise BadUploadError("The uploaded file is empty.")
    return ReceivedFile(filename=display_filename(filename), size_bytes=size, sha256=digest.hexdigest(), head=head)


class UploadService:
    """Turns one HTTP upload into a pending image row, or a counted refusal."""

    def __init__(
        self, settings: GatewaySettings, database: Database, storage: ImageStorage, metrics: GatewayMetrics
    ) -> None:
        self.settings = settings
        self.database = database
        self.storage = storage
        self.metrics = metrics

    async def accept(
        self, body: AsyncIterator[bytes], content_type: tuple[str, dict[str, str]], request_id: str
    ) -> Image:
        image_id = new_image_id()
        spool = self.storage.upload_path(image_id)
        try:
            received = await receive_image_part(body, content_type, spool)
            image_format = ensure_supported(received.head)
            header = await anyio.to_thread.run_sync(read_header, spool, image_format, self.settings.max_image_pixels)
        except UploadRejectedError as exc:
            spool.unlink(missing_ok=True)
            await self._count_rejection(exc)
            raise
        except BaseException:
            spool.unlink(missing_ok=True)
            raise
        image = Image(
            id=image_id,
            filename=received.filename,
            request_id=request_id,
            format=header.format,
            mode=header.mode,
            width=header.width,
            height=header.height,
            size_bytes=received.size_bytes,
            sha256=received.sha256,
        )
        original = self.storage.commit_upload(image_id, header.format)
        try:
            await self.database.write(lambda session: ImageRepository(session).add(image))
        except BaseException:
            original.unlink(missing_ok=True)
            raise
        self.metrics.uploads_accepted.inc()
        log.info(
            "upload_accepted",
            image_id=image_id,
            format=header.format,
            size_bytes=received.size_bytes,
            width=header.width,
            height=header.height,
        )
        return image

    async def _count_rejection(self, error: UploadRejectedError) -> None:
        reason = RejectionReason(error.reason)
        self.metrics.uploads_rejected.labels(reason.value).inc()
        log.info("upload_rejected", reason=reason.value, status=error.status, detail=error.detail)
        with contextlib.suppress(Exception):
            await self.database.write(lambda session: ImageRepository(session).count_rejection(reason))
