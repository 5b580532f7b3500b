"""Orphans: a crash between the object write and the row commit leaves nothing behind for long.

The upload marks its id, writes the original, then commits the row. The sweeper removes the
blobs of marks older than the grace period that have no row, and only those: an upload still in
flight (on this gateway or another one) has a young mark and is spared.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import httpx
import pytest
from sqlalchemy import create_engine, text

from gateway.persistence.db import Database, build_engine, upgrade_schema
from gateway.persistence.models import Image
from gateway.persistence.repository import ImageRepository
from gateway.settings import GatewaySettings
from gateway.storage import S3BlobStore, new_image_id
from gateway.storage.sweeper import OrphanSweeper
from tests.conftest import SettingsFactory
from tests.processes import ServiceProcess, gateway_process
from tests.repository_backends import postgres_schema_url
from tests.s3_server import ACCESS_KEY_ID, BUCKET, SECRET_ACCESS_KEY, S3Server
from tests.support import FAKE_INFERENCE_URL, eventually_blocking, make_image_bytes


def image_row(image_id: str) -> Image:
    return Image(
        id=image_id, filename="a.jpg", format="JPEG", mode="RGB", width=64, height=48, size_bytes=1, sha256="0"
    )


async def store_like_an_upload(store: S3BlobStore, image_id: str, spool_dir: Path) -> None:
    spool = spool_dir / f"{image_id}.part"
    spool.write_bytes(make_image_bytes())
    await store.put_original(image_id, "JPEG", spool)


async def test_sweeper_removes_unclaimed_objects_and_spares_young_marks_and_committed_uploads(
    make_s3_settings: SettingsFactory, s3_server: S3Server, tmp_path: Path
) -> None:
    settings: GatewaySettings = make_s3_settings()
    database = Database(build_engine(settings.resolved_database_url))
    await anyio.to_thread.run_sync(upgrade_schema, database.engine)
    store = S3BlobStore(settings)
    await store.start()
    try:
        crashed, in_flight, committed = new_image_id(), new_image_id(), new_image_id()
        for image_id in (crashed, in_flight, committed):
            await store_like_an_upload(store, image_id, tmp_path)
        await database.write(lambda session: ImageRepository(session).add(image_row(committed)))

        # Every mark is younger than the grace period: nothing is swept, whatever has a row.
        assert await OrphanSweeper(store, database, grace_s=30, interval_s=1).sweep_once() == []
        assert len(s3_server.files()) == 6
        await database.write(lambda session: ImageRepository(session).add(image_row(in_flight)))  # its commit lands

        # The server's Date header has a one-second resolution, so the three marks may come of age in
        # different sweeps: sweep until every mark is gone, keeping what each sweep removed.
        kept = {f"originals/{image_id[:2]}/{image_id}.jpg" for image_id in (in_flight, committed)}
        sweeper, deadline = OrphanSweeper(store, database, grace_s=1, interval_s=1), time.monotonic() + 20
        swept: list[str] = []
        while s3_server.files() != kept:
            assert time.monotonic() < deadline, f"left in the bucket: {s3_server.files() - kept}"
            swept += await sweeper.sweep_once()
            await anyio.sleep(0.2)
        assert swept == [crashed]
    finally:
        await store.aclose()
        database.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema_url() as url:
        yield url


def s3_gateway(tmp_path: Path, server: S3Server, database_url: str, name: str) -> ServiceProcess:
    return gateway_process(
        tmp_path / name,
        FAKE_INFERENCE_URL,
        DATABASE_URL=database_url,
        GATEWAY_STORAGE_BACKEND="s3",
        GATEWAY_S3_ENDPOINT_URL=server.url,
        GATEWAY_S3_BUCKET=BUCKET,
        GATEWAY_S3_ACCESS_KEY_ID=ACCESS_KEY_ID,
        GATEWAY_S3_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
        GATEWAY_STORAGE_CHECK_INTERVAL_S="0.5",
        GATEWAY_STORAGE_ORPHAN_GRACE_S="2",
        GATEWAY_WORKERS="0",
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_a_gateway_killed_between_object_write_and_row_commit_leaves_no_object_behind(
    s3_server: S3Server, postgres_url: str, tmp_path: Path
) -> None:
    first = s3_gateway(tmp_path, s3_server, postgres_url, "first")
    first.start()
    locker = create_engine(postgres_url)
    try:
        with locker.connect() as connection:
            # The row's INSERT waits on this lock, after the original is already in the bucket.
            connection.execute(text("LOCK TABLE images IN SHARE MODE"))
            upload = threading.Thread(target=post_ignoring_the_answer, args=(first.url,), daemon=True)
            upload.start()
            eventually_blocking(
                lambda: any(key.startswith("originals/") for key in s3_server.files()),
                timeout_s=30,
                what="the object write",
            )
            first.kill()  # the crash: object written, row never committed
            connection.rollback()
        upload.join(30)
        assert {key.split("/")[0] for key in s3_server.files()} == {"originals", "pending"}

        second = s3_gateway(tmp_path, s3_server, postgres_url, "second")  # a new gateway on an empty disk
        started = time.monotonic()
        second.start()
        try:
            eventually_blocking(lambda: s3_server.files() == set(), timeout_s=60, what="the orphan sweep")
            assert time.monotonic() - started < 60
            assert httpx.get(f"{second.url}/api/images", timeout=10).json()["items"] == []
        finally:
            second.stop()
    finally:
        first.stop()
        locker.dispose()


def post_ignoring_the_answer(url: str) -> None:
    files = {"image": ("a.jpg", make_image_bytes(), "image/jpeg")}
    with contextlib.suppress(httpx.TransportError):  # the gateway is killed while the request waits
        httpx.post(f"{url}/api/images", files=files, timeout=60)
