"""The whole gateway on PostgreSQL: migrations at start, uploads processed, stats from the server."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from tests.conftest import SettingsFactory, wait_for_status
from tests.in_process import running_gateway, upload_to
from tests.repository_backends import postgres_schema_url
from tests.support import FakeInference, make_image_bytes

pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema_url() as url:
        yield url


async def test_upload_completes_on_postgres(
    make_settings: SettingsFactory, fake_inference: FakeInference, postgres_url: str
) -> None:
    settings = make_settings(database_url=postgres_url)
    app = create_app(settings, inference_transport=fake_inference.transport)
    async with AsyncTestClient(app=app) as client:
        ids = []
        for number in range(4):
            data = make_image_bytes((30 + number, 20))
            response = await client.post("/api/images", files={"image": ("a.jpg", data, "image/jpeg")})
            assert response.status_code == 202
            ids.append(response.json()["id"])
        for image_id in ids:
            assert (await wait_for_status(client, image_id))["status"] == "completed"
        stats: dict[str, Any] = (await client.get("/api/stats")).json()
        assert stats["by_status"]["completed"] == 4
        page = (await client.get("/api/images", params={"limit": 2})).json()
        second = (await client.get("/api/images", params={"limit": 2, "cursor": page["next_cursor"]})).json()
        assert [item["id"] for item in page["items"] + second["items"]] == list(reversed(ids))
    # a second start on the same database migrates nothing and keeps the data
    async with AsyncTestClient(app=create_app(settings, inference_transport=fake_inference.transport)) as client:
        assert (await client.get("/api/stats")).json()["total"] == 4


async def test_stops_that_land_mid_work_leave_no_connection_open(
    make_settings: SettingsFactory, fake_inference: FakeInference, postgres_url: str
) -> None:
    # Each stop lands at another point of a claim, a save or a NOTIFY listen. A connection still
    # checked out by a thread when the engine is disposed would leak, and psycopg's warning when it
    # is collected fails the test (warnings are errors).
    settings = make_settings(database_url=postgres_url, workers=2, poll_interval_s=0.01, events_poll_interval_s=0.01)
    fake_inference.delay_s = 0.01
    for attempt in range(20):
        async with running_gateway(settings, fake_inference) as app:
            await upload_to(app)
            await asyncio.sleep(attempt * 0.002)
        gc.collect()
