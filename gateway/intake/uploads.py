"""Accepting an upload: stream the multipart body to an id-named spool, validate, commit.

Cheap and synchronous: the ``image`` part is spooled to disk and hashed in a worker thread as
it streams, the format is judged by the leading bytes, the header is parsed (no pixel data
decoded), then the file is moved into place and the row committed. The event loop only parses
the multipart framing. Every refusal is counted by reason and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import unicodedata
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO

import anyio.from_thread
import anyio.to_thread
import structlog
from litestar.exceptions.http_exceptions import InternalServerException, RequestEntityTooLarge
from multipart import ParserError, ParserLimitReached, PushMultipartParser
from sqlmodel import Session

from gateway.errors import (
    BadUploadError,
    ClientDisconnectedError,
    UploadAbortedError,
    UploadRejectedError,
    UploadTimeoutError,
    UploadTooLargeError,
)
from gateway.imaging.images import ensure_supported, read_header
from gateway.metrics import GatewayMetrics
from gateway.persistence.db import Database
from gateway.persistence.models import Image, RejectionReason
from gateway.persistence.repository import ImageRepository
from gateway.persistence.threads import run_to_completion
from gateway.settings import GatewaySettings
from gateway.storage import BlobStore, new_image_id
from servicekit.sniffing import SNIFF_BYTES

IMAGE_FIELD = "image"
MAX_FILENAME_CHARS = 255
MAX_PARTS = 16
# A part's header block: room for a 1,500-character CJK file name even percent-encoded (~14 KB).
MAX_PART_HEADER_BYTES = 32 * 1024
SPOOL_FLUSH_BYTES = 4 * 1024 * 1024
# Runs in the transaction that inserts an accepted image, so its writes commit with the row or not at all.
AcceptedHook = Callable[[Session, Image], None]
log = structlog.get_logger("gateway.uploads")


def display_filename(raw: str | None) -> str:
    """The client's name reduced to a safe display string: last path component, printable, bounded."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if ch.isprintable()).strip()
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, extension = name.rpartition(".")
        keep = dot + extension if stem and len(extension) <= 8 else ""
        name = name[: MAX_FILENAME_CHARS - len(keep) - 1] + "…" + keep
    return name or "upload"


async def with_idle_timeout(body: AsyncIterator[bytes], idle_timeout_s: float) -> AsyncIterator[bytes]:
    """``body``, but a gap of more than ``idle_timeout_s`` between chunks is an ``UploadTimeoutError``."""
    chunks = aiter(body)
    while True:
        try:
            with anyio.fail_after(idle_timeout_s):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError as exc:
            raise UploadTimeoutError(f"The request body sent nothing for {idle_timeout_s:g} s; send it again.") from exc
        yield chunk


class SpooledPart:
    """The ``image`` part on its way to disk: chunks queue here and are hashed and written in a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filename: str | None = None
        self.parts_seen = 0
        self.size_bytes = 0
        self.head = b""
        self.pending: list[bytes | memoryview] = []
        self.pending_bytes = 0
        self._digest = hashlib.sha256()
        self._handle: BinaryIO | None = None

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def add(self, chunk: bytes | memoryview) -> None:
        self.pending.append(chunk)
        self.pending_bytes += len(chunk)

    def flush(self) -> None:
        """Hash and write what is pending (blocking: call it in a worker thread)."""
        if self._handle is None:
            self._handle = self.path.open("wb")
        for chunk in self.pending:
            if len(self.head) < SNIFF_BYTES:
                self.head += bytes(chunk[: SNIFF_BYTES - len(self.head)])
            self._digest.update(chunk)
            self._handle.write(chunk)
            self.size_bytes += len(chunk)
        self.pending.clear()
        self.pending_bytes = 0

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


async def receive_image_part(
    body: AsyncIterator[bytes], content_type: tuple[str, dict[str, str]], part: SpooledPart
) -> None:
    """Parse the multipart framing and queue the single ``image`` part into ``part``."""
    media_type, options = content_type
    boundary = options.get("boundary")
    if media_type != "multipart/form-data" or not boundary:
        raise BadUploadError(f"Send multipart/form-data with the file in the field '{IMAGE_FIELD}'.")
    in_image = False
    try:
        with PushMultipartParser(
            boundary, max_segment_count=MAX_PARTS, max_header_size=MAX_PART_HEADER_BYTES
        ) as parser:
            async for chunk in body:
                for event in parser.parse(chunk):
                    if event is None:
                        in_image = False
                    elif isinstance(event, (bytes, memoryview)):
                        if in_image:
                            part.add(event)
                    elif event.name == IMAGE_FIELD:
                        part.parts_seen += 1
                        if part.parts_seen > 1:
                            raise BadUploadError(f"Send exactly one file in the field '{IMAGE_FIELD}'; got several.")
                        in_image, part.filename = True, event.filename
                if part.pending_bytes >= SPOOL_FLUSH_BYTES:
                    await anyio.to_thread.run_sync(part.flush)
                if parser.closed:
                    break
    except RequestEntityTooLarge as exc:
        raise UploadTooLargeError("The request body is larger than the upload limit.") from exc
    except ParserLimitReached as exc:
        limits = f"at most {MAX_PARTS} parts, each with at most {MAX_PART_HEADER_BYTES // 1024} KiB of headers"
        raise BadUploadError(f"The multipart body is over the parser's limits ({limits}): {exc}.") from exc
    except ParserError as exc:
        raise BadUploadError(f"The multipart body cannot be parsed: {exc}.") from exc
    except InternalServerException as exc:  # Litestar's word for http.disconnect mid-body
        raise ClientDisconnectedError("The client disconnected before the upload finished.") from exc
    if part.parts_seen == 0:
        raise BadUploadError(f"The form has no field '{IMAGE_FIELD}'; send the file as image=@photo.jpg.")


class UploadService:
    """Turns one HTTP upload into a pending image row, or a counted refusal."""

    def __init__(
        self, settings: GatewaySettings, database: Database, storage: BlobStore, metrics: GatewayMetrics
    ) -> None:
        self.settings = settings
        self.database = database
        self.storage = storage
        self.metrics = metrics

    async def accept(
        self,
        body: AsyncIterator[bytes],
        content_type: tuple[str, dict[str, str]],
        request_id: str,
        also_in_transaction: AcceptedHook | None = None,
    ) -> Image:
        """Store the upload as a pending image; ``also_in_transaction`` runs in the insert's transaction."""
        try:
            async with self.received_part(body, content_type) as part:
                image = await run_to_completion(self._store, part, request_id, also_in_transaction)
        except UploadRejectedError as exc:
            await self._count_rejection(exc)
            raise
        except UploadAbortedError as exc:
            log.info("upload_aborted", status=exc.status, detail=exc.detail)
            raise
        self.metrics.uploads_accepted.inc()
        log.info(
            "upload_accepted", image_id=image.id, format=image.format, size_bytes=image.size_bytes,
            width=image.width, height=image.height,
        )  # fmt: skip
        return image

    @asynccontextmanager
    async def received_part(
        self, body: AsyncIterator[bytes], content_type: tuple[str, dict[str, str]]
    ) -> AsyncIterator[SpooledPart]:
        """The body's ``image`` part, spooled to an id-named file that is gone once the block ends
        (a file the upload moved into place is no longer there to remove)."""
        part = SpooledPart(self.storage.upload_path(new_image_id()))
        try:
            await receive_image_part(with_idle_timeout(body, self.settings.body_idle_timeout_s), content_type, part)
            yield part
        finally:
            part.close()
            with contextlib.suppress(OSError):
                part.path.unlink(missing_ok=True)

    def _store(self, part: SpooledPart, request_id: str, also_in_transaction: AcceptedHook | None) -> Image:
        """In one worker thread: finish the spool, judge it, move it into place, commit the row."""
        part.flush()
        part.close()
        if part.size_bytes == 0:
            raise BadUploadError("The uploaded file is empty.")
        image_format = ensure_supported(part.head)
        header = read_header(part.path, image_format, self.settings.max_image_pixels)
        image_id = part.path.stem
        image = Image(
            id=image_id,
            filename=display_filename(part.filename),
            request_id=request_id,
            format=header.format,
            mode=header.mode,
            width=header.width,
            height=header.height,
            size_bytes=part.size_bytes,
            sha256=part.sha256,
        )
        # The original is stored before the row commits: a 202 means it is kept. A crash in
        # between leaves a sweep mark (S3) that removes the blob once the grace period passes.
        anyio.from_thread.run(self.storage.put_original, image_id, header.format, part.path)
        try:
            self.database.run_sync(lambda session: self._insert(session, image, also_in_transaction))
        except BaseException:
            with contextlib.suppress(Exception):
                anyio.from_thread.run(self.storage.delete_image, image_id)
            raise
        return image

    @staticmethod
    def _insert(session: Session, image: Image, also_in_transaction: AcceptedHook | None) -> None:
        ImageRepository(session).add(image)
        if also_in_transaction is not None:
            also_in_transaction(session, image)

    async def _count_rejection(self, error: UploadRejectedError) -> None:
        reason = RejectionReason(error.reason)
        self.metrics.uploads_rejected.labels(reason.value).inc()
        log.info("upload_rejected", reason=reason.value, status=error.status, detail=error.detail)
        with contextlib.suppress(Exception):
            await self.database.write(lambda session: ImageRepository(session).count_rejection(reason))
