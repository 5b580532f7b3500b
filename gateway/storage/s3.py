"""``S3BlobStore``: originals and thumbnails only in an S3-compatible bucket (aiobotocore, SigV4, path style).

The data dir keeps upload spools and nothing else, so any gateway serves any image and a gateway
can be replaced by one on an empty disk. The bucket is created when missing; while the endpoint,
the credentials or the bucket are wrong, ``readiness()`` says which and a background task retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import structlog

from gateway.errors import StorageUnavailableError
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from gateway.storage.blobs import BlobInfo, BlobNotFoundError, BlobStream
from gateway.storage.layout import (
    CONTENT_TYPES,
    THUMBNAIL_CONTENT_TYPE,
    ThumbnailSize,
    image_keys,
    original_key,
    thumbnail_key,
)
from gateway.storage.s3_client import create_client, server_time
from gateway.storage.s3_errors import (
    S3_FAILURES,
    S3Target,
    describe_create_failure,
    describe_failure,
    describe_malformed,
    error_code,
    is_missing,
)
from servicekit.background import BackgroundLoops

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

log = structlog.get_logger("gateway.storage")
MARKS = "pending/"
CHUNK_BYTES = 1024 * 1024
# A file larger than one part goes up as a multipart upload, so a put holds one part in memory.
# S3 wants at least 5 MiB in every part but the last.
PART_BYTES = 8 * 1024 * 1024
STARTUP_CHECK_S = 5.0
RETRY_NOT_READY_S = 2.0
DELETE_BATCH = 1000
UNAVAILABLE_DETAIL = "The object store could not be used; nothing was kept."
CHECK_OUTCOMES = ("ok", "not_ready")


class S3BlobStore:
    """One bucket (and an optional key prefix) on one endpoint; upload spools in ``<data dir>/uploads``."""

    def __init__(self, settings: GatewaySettings, metrics: GatewayMetrics | None = None) -> None:
        if not (settings.s3_endpoint_url and settings.s3_bucket):
            raise ValueError("S3BlobStore needs GATEWAY_S3_ENDPOINT_URL and GATEWAY_S3_BUCKET")
        self.target = S3Target(endpoint_url=settings.s3_endpoint_url.rstrip("/"), bucket=settings.s3_bucket)
        self.prefix = settings.s3_prefix
        self.uploads_dir = settings.data_dir.resolve() / "uploads"
        self._settings = settings
        self._check_interval_s = settings.storage_check_interval_s
        self._retry_s = min(settings.storage_check_interval_s, RETRY_NOT_READY_S)
        self._problem: str | None = "The object store has not been reached yet."
        self._client: S3Client | None = None
        self._stack = AsyncExitStack()
        self._loops = BackgroundLoops("gateway.storage")
        self._metrics = metrics
        if metrics is not None:
            for outcome in CHECK_OUTCOMES:
                metrics.storage_checks.labels(outcome)  # both series at 0 from the start

    @property
    def description(self) -> str:
        return f"s3 {self.target.endpoint_url}/{self.target.bucket}/{self.prefix}"

    def upload_path(self, image_id: str) -> Path:
        return self.uploads_dir / f"{image_id}.part"

    async def start(self) -> None:
        await anyio.to_thread.run_sync(self._prepare_spools)
        if (malformed := describe_malformed(self.target)) is not None:
            self._set_problem(malformed)  # no request can succeed: stay up, not ready, saying why
            return
        if self._client is None:
            await self.open()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STARTUP_CHECK_S):
                await self.check()
        if not self._loops.names:
            self._loops.start("s3-readiness", self._keep_checking)

    def _prepare_spools(self) -> None:
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.uploads_dir.iterdir():
            leftover.unlink(missing_ok=True)

    async def open(self) -> None:
        """Create the client (no request is made)."""
        self._client = await self._stack.enter_async_context(create_client(self._settings, self.target.endpoint_url))

    async def aclose(self) -> None:
        await self._loops.stop()
        await self._stack.aclose()

    def readiness(self) -> str | None:
        return self._problem

    async def check(self) -> str | None:
        """Reach the bucket, creating it when missing; remember, count and return the problem, if any."""
        problem = await self._reach_bucket()
        if self._metrics is not None:
            self._metrics.storage_checks.labels("ok" if problem is None else "not_ready").inc()
        return problem

    async def _reach_bucket(self) -> str | None:
        client = self.client
        try:
            await client.list_objects_v2(Bucket=self.target.bucket, Prefix=self.prefix + MARKS, MaxKeys=1)
        except S3_FAILURES as exc:
            if error_code(exc) != "NoSuchBucket":
                return self._set_problem(describe_failure(exc, self.target))
            try:
                await client.create_bucket(Bucket=self.target.bucket)
            except S3_FAILURES as create_exc:
                return self._set_problem(describe_create_failure(create_exc, self.target))
            log.info("s3_bucket_created", bucket=self.target.bucket, endpoint=self.target.endpoint_url)
        if self._problem is not None:
            log.info("storage_ready", storage=self.description)
        self._problem = None
        return None

    def _set_problem(self, sentence: str) -> str:
        if sentence != self._problem:
            log.warning("storage_not_ready", storage=self.description, detail=sentence)
        self._problem = sentence
        return sentence

    async def _keep_checking(self) -> None:
        while True:
            await asyncio.sleep(self._check_interval_s if self._problem is None else self._retry_s)
            await self.check()

    @property
    def client(self) -> S3Client:
        if self._client is None:
            raise StorageUnavailableError("The object store client is not open.")
        return self._client

    @contextlib.contextmanager
    def _errors(self, missing: str | None = None) -> Iterator[None]:
        """Translate the client's errors: ``BlobNotFoundError`` when ``missing`` is given, else 503."""
        try:
            yield
        except S3_FAILURES as exc:
            if missing is not None and is_missing(exc):
                raise BlobNotFoundError(missing) from exc
            sentence = describe_failure(exc, self.target)
            if not is_missing(exc):
                self._set_problem(sentence)
            raise StorageUnavailableError(UNAVAILABLE_DETAIL) from exc

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        with self._errors():
            await self.client.put_object(
                Bucket=self.target.bucket, Key=self.prefix + key, Body=data, ContentType=content_type
            )

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Upload a local file, one ``PART_BYTES`` part in memory at a time."""
        async with await anyio.open_file(path, "rb") as handle:
            first = await handle.read(PART_BYTES)
            second = await handle.read(PART_BYTES)
            if not second:
                return await self.put_bytes(key, first, content_type)
            with self._errors():
                upload = await self.client.create_multipart_upload(
                    Bucket=self.target.bucket, Key=self.prefix + key, ContentType=content_type
                )
            try:
                parts = [await self._put_part(key, upload["UploadId"], 1, first)]
                number, data = 2, second
                while data:
                    parts.append(await self._put_part(key, upload["UploadId"], number, data))
                    number, data = number + 1, await handle.read(PART_BYTES)
                with self._errors():
                    await self.client.complete_multipart_upload(
                        Bucket=self.target.bucket,
                        Key=self.prefix + key,
                        UploadId=upload["UploadId"],
                        MultipartUpload={"Parts": parts},
                    )
            except BaseException:
                with anyio.CancelScope(shield=True), contextlib.suppress(*S3_FAILURES):
                    await self.client.abort_multipart_upload(
                        Bucket=self.target.bucket, Key=self.prefix + key, UploadId=upload["UploadId"]
                    )
                raise

    async def _put_part(self, key: str, upload_id: str, number: int, data: bytes) -> CompletedPartTypeDef:
        with self._errors():
            response = await self.client.upload_part(
                Bucket=self.target.bucket, Key=self.prefix + key, UploadId=upload_id, PartNumber=number, Body=data
            )
        return {"ETag": response["ETag"], "PartNumber": number}

    async def head(self, key: str) -> BlobInfo | None:
        try:
            with self._errors(missing=key):
                response = await self.client.head_object(Bucket=self.target.bucket, Key=self.prefix + key)
        except BlobNotFoundError:
            return None
        return BlobInfo(size_bytes=response["ContentLength"], modified_at=response["LastModified"])

    async def open_key(self, key: str, missing: str) -> BlobStream:
        with self._errors(missing=missing):
            response = await self.client.get_object(Bucket=self.target.bucket, Key=self.prefix + key)
        info = BlobInfo(size_bytes=response["ContentLength"], modified_at=response["LastModified"])
        return BlobStream(info=info, chunks=self._body_chunks(response["Body"]))

    async def _body_chunks(self, body: Any) -> AsyncIterator[bytes]:
        try:
            with self._errors():
                async for chunk in body.iter_chunks(CHUNK_BYTES):
                    yield chunk
        finally:
            body.close()

    async def put_original(self, image_id: str, image_format: str, spool: Path) -> None:
        """Mark first, then write: a crash before the row commits leaves a mark the sweeper acts on."""
        await self.mark_for_sweep(image_id)
        await self.put_file(original_key(image_id, image_format), spool, CONTENT_TYPES[image_format])

    async def open_original(self, image_id: str, image_format: str) -> BlobStream:
        missing = f"The original of image {image_id} is not stored."
        return await self.open_key(original_key(image_id, image_format), missing)

    async def stat_original(self, image_id: str, image_format: str) -> BlobInfo | None:
        return await self.head(original_key(image_id, image_format))

    @asynccontextmanager
    async def original_file(self, image_id: str, image_format: str) -> AsyncIterator[Path]:
        """Download the original to a spool file, removed when the context closes."""
        stream = await self.open_original(image_id, image_format)
        spool = anyio.Path(self.uploads_dir / f"{uuid.uuid4().hex}.download")
        try:
            async with await anyio.open_file(spool, "wb") as handle:
                async for chunk in stream.chunks:
                    await handle.write(chunk)
            yield Path(spool)
        finally:
            await spool.unlink(missing_ok=True)

    async def put_thumbnail(self, image_id: str, size: ThumbnailSize, data: bytes) -> None:
        await self.put_bytes(thumbnail_key(image_id, size), data, THUMBNAIL_CONTENT_TYPE)

    async def read_thumbnail(self, image_id: str, size: ThumbnailSize) -> bytes:
        missing = f"The {size} thumbnail of image {image_id} is not stored."
        stream = await self.open_key(thumbnail_key(image_id, size), missing)
        return b"".join([chunk async for chunk in stream.chunks])

    async def delete_image(self, image_id: str) -> None:
        await self.delete_keys([self.prefix + key for key in image_keys(image_id)])

    async def delete_keys(self, keys: Sequence[str]) -> None:
        """Delete full keys (prefix included) in batches; missing keys are fine."""
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": key} for key in keys[start : start + DELETE_BATCH]]
            with self._errors():
                await self.client.delete_objects(
                    Bucket=self.target.bucket,
                    Delete={"Objects": batch, "Quiet": True},  # type: ignore[typeddict-item]
                )

    async def mark_for_sweep(self, image_id: str) -> None:
        await self.put_bytes(MARKS + image_id, b"", "application/octet-stream")

    async def marked_ids(self, older_than_s: float) -> list[str]:
        """Marks older than ``older_than_s`` by the server's clock (its ``Date`` header), so skew is harmless."""
        found: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors():
            async for page in paginator.paginate(Bucket=self.target.bucket, Prefix=self.prefix + MARKS):
                server_now = server_time(page.get("ResponseMetadata", {}).get("HTTPHeaders", {}))
                cutoff = server_now - timedelta(seconds=older_than_s)
                found += [
                    item["Key"].rsplit("/", 1)[-1]
                    for item in page.get("Contents", [])
                    if "Key" in item and "LastModified" in item and item["LastModified"] <= cutoff
                ]
        return found

    async def clear_marks(self, image_ids: Sequence[str]) -> None:
        await self.delete_keys([self.prefix + MARKS + image_id for image_id in image_ids])
