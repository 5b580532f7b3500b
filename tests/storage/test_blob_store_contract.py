"""Both backends keep the ``BlobStore`` contract: the same calls, the same answers, the same errors."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from gateway.errors import StorageUnavailableError
from gateway.storage import BlobNotFoundError, BlobStore, LocalBlobStore, S3BlobStore, new_image_id
from gateway.storage.s3 import PART_BYTES
from tests.conftest import SettingsFactory
from tests.support import make_image_bytes


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> AsyncIterator[BlobStore]:
    if request.param == "local":
        blob_store: BlobStore = LocalBlobStore(make_settings().data_dir)
    else:
        blob_store = S3BlobStore(request.getfixturevalue("make_s3_settings")())
    await blob_store.start()
    try:
        yield blob_store
    finally:
        await blob_store.aclose()


async def stored_upload(store: BlobStore, data: bytes, image_format: str = "PNG") -> str:
    image_id = new_image_id()
    spool = store.upload_path(image_id)
    spool.write_bytes(data)
    await store.put_original(image_id, image_format, spool)
    return image_id


async def test_an_original_put_from_its_spool_reads_back_with_size_and_time(store: BlobStore) -> None:
    data = make_image_bytes(image_format="PNG")
    image_id = await stored_upload(store, data)
    assert store.readiness() is None
    info = await store.stat_original(image_id, "PNG")
    assert info is not None
    assert info.size_bytes == len(data)
    assert abs(info.modified_at - datetime.now(UTC)) < timedelta(minutes=5)
    blob = await store.open_original(image_id, "PNG")
    assert blob.info.size_bytes == len(data)
    assert b"".join([chunk async for chunk in blob.chunks]) == data
    async with store.original_file(image_id, "PNG") as path:
        assert Path(path).read_bytes() == data


async def test_thumbnails_are_written_and_read_by_size(store: BlobStore) -> None:
    image_id = new_image_id()
    await store.put_thumbnail(image_id, "small", b"small bytes")
    await store.put_thumbnail(image_id, "medium", b"medium bytes")
    assert await store.read_thumbnail(image_id, "small") == b"small bytes"
    assert await store.read_thumbnail(image_id, "medium") == b"medium bytes"


async def test_deleting_an_image_removes_every_blob_and_missing_ones_raise_blob_not_found(store: BlobStore) -> None:
    image_id = await stored_upload(store, make_image_bytes(image_format="PNG"))
    await store.put_thumbnail(image_id, "small", b"small")
    await store.delete_image(image_id)
    await store.delete_image(image_id)  # twice is fine
    assert await store.stat_original(image_id, "PNG") is None
    with pytest.raises(BlobNotFoundError):
        await store.open_original(image_id, "PNG")
    with pytest.raises(BlobNotFoundError):
        await store.read_thumbnail(image_id, "small")
    with pytest.raises(FileNotFoundError):  # BlobNotFoundError is one: existing handlers keep working
        async with store.original_file(image_id, "PNG"):
            pass


async def test_start_drops_upload_spools_a_crashed_process_left(store: BlobStore) -> None:
    leftover = store.upload_path(new_image_id())
    leftover.write_bytes(b"half an upload")
    await store.start()
    assert not leftover.exists()


async def test_an_original_larger_than_one_part_reads_back_byte_for_byte(store: BlobStore) -> None:
    data = os.urandom(2 * PART_BYTES + 12345)
    part_sizes = spy_on_part_uploads(store)
    image_id = await stored_upload(store, data, "JPEG")
    info = await store.stat_original(image_id, "JPEG")
    assert info is not None and info.size_bytes == len(data)
    async with store.original_file(image_id, "JPEG") as path:
        assert hashlib.sha256(Path(path).read_bytes()).digest() == hashlib.sha256(data).digest()
    if isinstance(store, S3BlobStore):  # a multipart upload, one part in memory at a time
        assert part_sizes == [PART_BYTES, PART_BYTES, 12345]


def spy_on_part_uploads(store: BlobStore) -> list[int]:
    """The size of each part the S3 client sends, recorded as the real call goes through."""
    sizes: list[int] = []
    if isinstance(store, S3BlobStore):
        client = store.client
        upload_part = client.upload_part

        async def recorded(**arguments: Any) -> Any:
            sizes.append(len(arguments["Body"]))
            return await upload_part(**arguments)

        client.upload_part = recorded  # type: ignore[method-assign]
    return sizes


async def test_a_multipart_put_that_fails_midway_is_aborted_and_leaves_no_object(
    make_s3_settings: SettingsFactory,
) -> None:
    store = S3BlobStore(make_s3_settings())
    await store.start()
    try:
        client = store.client
        upload_part = client.upload_part

        async def second_part_fails(**arguments: Any) -> Any:
            if arguments["PartNumber"] == 2:
                raise EndpointConnectionError(endpoint_url="http://the-network-went-away")
            return await upload_part(**arguments)

        client.upload_part = second_part_fails  # type: ignore[method-assign]
        with pytest.raises(StorageUnavailableError):
            await stored_upload(store, os.urandom(2 * PART_BYTES), "JPEG")
        unfinished = await client.list_multipart_uploads(Bucket=store.target.bucket)
        assert unfinished.get("Uploads", []) == []
        listed = await client.list_objects_v2(Bucket=store.target.bucket, Prefix=store.prefix + "originals/")
        assert listed.get("Contents", []) == []
    finally:
        await store.aclose()
