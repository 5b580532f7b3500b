"""What each event says: an ``image.failed`` carries the error and the caption status, so a receiver
can tell a final failure from one the gateway will re-queue by itself."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from gateway.deps import GatewayServices
from gateway.persistence.event_log import event_data, events_after
from tests.conftest import wait_for_status
from tests.support import FakeInference, png_header_only, upload


async def events_of(client: AsyncTestClient[Any], image_id: str) -> list[tuple[str, dict[str, str | None]]]:
    services: GatewayServices = client.app.state.services
    events = await services.database.read(lambda session: events_after(session, 0, image_id=image_id))
    return [(event.type, event_data(event)) for event in events]


async def test_a_file_that_cannot_be_decoded_fails_with_the_caption_failed_for_good(
    client: AsyncTestClient[Any],
) -> None:
    image_id = await upload(client, png_header_only(64, 48))
    details = await wait_for_status(client, image_id)
    events = await events_of(client, image_id)
    assert [(kind, data["status"], data["caption_status"]) for kind, data in events] == [
        ("image.accepted", "pending", "pending"),
        ("image.failed", "failed", "failed"),
    ]
    assert events[-1][1]["error"] == details["error"] is not None


@pytest.mark.gateway_settings(inference_probe_interval_s=60)
async def test_an_inference_outage_fails_with_the_caption_unavailable_to_be_requeued(
    client: AsyncTestClient[Any], fake_inference: FakeInference
) -> None:
    fake_inference.up = False
    image_id = await upload(client)
    await wait_for_status(client, image_id)
    kind, data = (await events_of(client, image_id))[-1]
    assert (kind, data["status"], data["caption_status"]) == ("image.failed", "failed", "unavailable")
    assert "could not be reached" in (data["error"] or "")


async def test_completed_and_deleted_events_say_what_they_carry(client: AsyncTestClient[Any]) -> None:
    image_id = await upload(client)
    details = await wait_for_status(client, image_id)
    assert (await client.delete(f"/api/images/{image_id}")).status_code == 204
    completed, deleted = (await events_of(client, image_id))[-2:]
    assert completed == ("image.completed", {**completed[1], "status": "completed", "caption_status": "completed",
                                             "caption": details["caption"]["text"], "error": None})  # fmt: skip
    assert deleted == ("image.deleted", {**deleted[1], "status": "deleted", "caption_status": None, "caption": None,
                                         "error": None})  # fmt: skip
