"""The gateway on the S3 backend, against a real S3 server: blobs only in the bucket, any gateway serves any image."""

from __future__ import annotations

import hashlib
import io
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient
from PIL import Image

from tests.conftest import SettingsFactory, wait_for_status
from tests.s3_server import S3Server
from tests.storage.conftest import AppFactory, local_files
from tests.support import FakeInference, eventually, make_image_bytes


async def upload(client: AsyncTestClient[Any], data: bytes, name: str = "photo.jpg") -> str:
    response = await client.post("/api/images", files={"image": (name, data, "image/jpeg")})
    assert response.status_code == 202, response.text
    image_id: str = response.json()["id"]
    return image_id


def blob_keys(image_id: str, extension: str = "jpg") -> set[str]:
    shard = image_id[:2]
    return {
        f"originals/{shard}/{image_id}.{extension}",
        f"thumbnails/{shard}/{image_id}/small.jpg",
        f"thumbnails/{shard}/{image_id}/medium.jpg",
    }


async def test_upload_is_processed_and_served_from_the_bucket_with_nothing_kept_on_local_disk(
    make_s3_settings: SettingsFactory, open_app: AppFactory, s3_server: S3Server
) -> None:
    settings = make_s3_settings(storage_orphan_grace_s=2)  # longer than an upload between mark and commit
    data = make_image_bytes((900, 600))
    async with open_app(settings) as client:
        image_id = await upload(client, data, name="été à la plage.jpg")
        assert s3_server.files() >= {f"originals/{image_id[:2]}/{image_id}.jpg"}  # stored before the 202
        details = await wait_for_status(client, image_id)
        assert details["status"] == "completed", details
        original = await client.get(f"/api/images/{image_id}/original")
        small = await client.get(f"/api/images/{image_id}/thumbnails/small")
        medium = await client.get(f"/api/images/{image_id}/thumbnails/medium")
        await eventually(
            lambda: s3_server.files() == blob_keys(image_id), timeout_s=20
        )  # the upload's sweep mark is cleared
    assert original.status_code == 200
    assert original.content == data
    assert original.headers["content-type"] == "image/jpeg"
    assert original.headers["content-length"] == str(len(data))
    assert "filename*=UTF-8''%C3%A9t%C3%A9" in original.headers["content-disposition"]
    assert parsedate_to_datetime(original.headers["last-modified"]).tzinfo is not None
    assert Image.open(io.BytesIO(small.content)).size == (160, 107)
    assert Image.open(io.BytesIO(medium.content)).size == (640, 427)
    assert medium.headers["x-caption"]
    stored = (s3_server.bucket_dir() / f"originals/{image_id[:2]}/{image_id}.jpg").read_bytes()
    assert hashlib.sha256(stored).hexdigest() == details["metadata"]["sha256"]
    assert local_files(settings.data_dir) == []


async def test_two_gateways_with_their_own_data_dirs_serve_each_others_images(
    make_s3_settings: SettingsFactory, open_app: AppFactory, tmp_path: Path
) -> None:
    # One database and one bucket; only gateway B processes, so it must read what A stored.
    settings_a = make_s3_settings(data_dir=tmp_path / "a", workers=0)
    settings_b = make_s3_settings(data_dir=tmp_path / "b")
    data_a, data_b = make_image_bytes((300, 200), color=(10, 200, 10)), make_image_bytes((200, 300), image_format="PNG")
    async with open_app(settings_a) as gateway_a, open_app(settings_b) as gateway_b:
        from_a = await upload(gateway_a, data_a)
        from_b = await upload(gateway_b, data_b, name="b.png")
        for image_id in (from_a, from_b):
            assert (await wait_for_status(gateway_b, image_id))["status"] == "completed"
        for client in (gateway_a, gateway_b):
            assert (await client.get(f"/api/images/{from_a}/original")).content == data_a
            assert (await client.get(f"/api/images/{from_b}/original")).content == data_b
            thumbnail = await client.get(f"/api/images/{from_a}/thumbnails/small")
            assert Image.open(io.BytesIO(thumbnail.content)).size == (160, 107)
    assert local_files(settings_a.data_dir) == local_files(settings_b.data_dir) == []


async def test_a_missing_bucket_is_created_at_start(
    make_s3_settings: SettingsFactory, open_app: AppFactory, s3_server: S3Server
) -> None:
    assert not s3_server.bucket_dir().exists()
    async with open_app(make_s3_settings()) as client:
        ready = await client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["storage"] == "ok"
    assert s3_server.bucket_dir().is_dir()


async def test_a_key_prefix_keeps_every_blob_below_it(
    make_s3_settings: SettingsFactory, open_app: AppFactory, s3_server: S3Server
) -> None:
    async with open_app(make_s3_settings(s3_prefix="/tenants/one/")) as client:
        image_id = await upload(client, make_image_bytes())
        assert (await wait_for_status(client, image_id))["status"] == "completed"
        assert (await client.get(f"/api/images/{image_id}/thumbnails/medium")).status_code == 200
    assert s3_server.files() == {f"tenants/one/{key}" for key in blob_keys(image_id) | {f"pending/{image_id}"}}


async def test_delete_removes_the_objects_of_the_image(
    make_s3_settings: SettingsFactory, open_app: AppFactory, s3_server: S3Server
) -> None:
    async with open_app(make_s3_settings()) as client:
        kept = await upload(client, make_image_bytes(color=(1, 2, 3)))
        gone = await upload(client, make_image_bytes(color=(3, 2, 1)))
        for image_id in (kept, gone):
            await wait_for_status(client, image_id)
        assert (await client.delete(f"/api/images/{gone}")).status_code == 204
        missing = await client.get(f"/api/images/{gone}/original")
    assert missing.status_code == 404
    # The default 30 s grace has not passed: the sweep marks of both uploads and of the delete are still there.
    assert s3_server.files() == blob_keys(kept) | {f"pending/{kept}", f"pending/{gone}"}


async def test_delete_while_a_worker_has_the_image_leaves_no_object(
    make_s3_settings: SettingsFactory, open_app: AppFactory, s3_server: S3Server, fake_inference: FakeInference
) -> None:
    fake_inference.delay_s = 1.0  # the worker is captioning, thumbnails stored, when the image is deleted
    async with open_app(make_s3_settings(storage_orphan_grace_s=2)) as client:
        image_id = await upload(client, make_image_bytes())
        await eventually(lambda: bool(fake_inference.caption_requests), timeout_s=20)
        assert blob_keys(image_id) <= s3_server.files()
        assert (await client.delete(f"/api/images/{image_id}")).status_code == 204
        await eventually(
            lambda: s3_server.files() == set(), timeout_s=20
        )  # the worker's late result and the mark are gone too
