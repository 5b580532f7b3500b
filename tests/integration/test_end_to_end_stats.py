"""``end_to_end_ms`` counts from the upload, so time spent queued shows there and not in ``processing_ms``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import update
from sqlmodel import col

from gateway.app import create_app
from gateway.deps import GatewayServices
from gateway.persistence.models import Image, utc_now
from tests.conftest import SettingsFactory, wait_for_status
from tests.support import FakeInference, upload

QUEUED_FOR = timedelta(minutes=2)


async def test_time_spent_queued_is_in_end_to_end_but_not_in_processing(
    make_settings: SettingsFactory, fake_inference: FakeInference
) -> None:
    paused = create_app(make_settings(workers=0), inference_transport=fake_inference.transport)
    async with AsyncTestClient(app=paused, raise_server_exceptions=False) as client:
        image_id = await upload(client)
        services: GatewayServices = client.app.state.services
        await services.database.write(  # as if it had waited in the queue for two minutes
            lambda session: session.execute(
                update(Image).where(col(Image.id) == image_id).values(created_at=utc_now() - QUEUED_FOR)
            )
        )
    working = create_app(make_settings(workers=1), inference_transport=fake_inference.transport)
    async with AsyncTestClient(app=working, raise_server_exceptions=False) as client:
        assert (await wait_for_status(client, image_id))["status"] == "completed"
        stats: dict[str, Any] = (await client.get("/api/stats")).json()
    waited_ms = QUEUED_FOR.total_seconds() * 1000
    assert stats["end_to_end_ms"]["max"] >= waited_ms
    assert stats["processing_ms"]["max"] < waited_ms
