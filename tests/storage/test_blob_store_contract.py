"""Both backends keep the ``BlobStore`` contract: the same calls, the same answers, the same errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.storage import BlobNotFoundError, BlobStore, LocalBlobStore, S3BlobStore, new_image_id
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
