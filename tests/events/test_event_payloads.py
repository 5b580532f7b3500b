"""What each event says: an ``image.failed`` carries the error and the caption status, so a receiver
can tell a final failure from one the gateway will re-queue by itself."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from gateway.api.events import message_of
from gateway.deps import GatewayServices
from gateway.events.webhooks.outbox import delivery_body
from gateway.persistence.event_log import event_data, events_after
from gateway.persistence.models import CaptionModel, CaptionStatus, Event
from tests.conftest import wait_for_status
from tests.support import FakeInference, png_header_only, upload


async def events_of(client: AsyncTestClient[Any], image_id: str) -> list[tuple[str, dict[str, str | None]]]:
    services: GatewayServices = client.app.state.services
    events = await services.database.read(lambda session: events_after(session, 0, image_id=image_id))
    return [(event.type, asdict(event_data(event))) for event in events]


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


AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
ID = "a" * 32


@pytest.mark.parametrize(
    ("event", "sse_data", "webhook_body"),
    [
        (
            Event(id=3, type="image.deleted", image_id=ID, status="deleted", at=AT),
            f'{{"id": "{ID}", "status": "deleted", "caption": null, "caption_status": null, "error": null, '
            '"at": "2026-01-02T03:04:05.678Z"}',
            f'{{"type":"image.deleted","event_id":3,"data":{{"id":"{ID}","status":"deleted","caption":null,'
            '"caption_status":null,"error":null,"at":"2026-01-02T03:04:05.678Z"}}',
        ),
        (
            Event(
                id=2,
                type="image.failed",
                image_id=ID,
                status="failed",
                caption_status=CaptionStatus.UNAVAILABLE,
                error='down \u00e9"',
                at=AT,
            ),
            f'{{"id": "{ID}", "status": "failed", "caption": null, "caption_status": "unavailable", '
            '"error": "down \\u00e9\\"", "at": "2026-01-02T03:04:05.678Z"}',
            f'{{"type":"image.failed","event_id":2,"data":{{"id":"{ID}","status":"failed","caption":null,'
            '"caption_status":"unavailable","error":"down \\u00e9\\"","at":"2026-01-02T03:04:05.678Z"}}',
        ),
        (
            Event(
                id=5,
                type="image.caption_updated",
                image_id=ID,
                status="completed",
                caption="a dog",
                at=AT,
                model=CaptionModel("m").as_json(),
                previous_model=CaptionModel("m", "r1", "int8").as_json(),
            ),
            f'{{"id": "{ID}", "caption": "a dog", "model": {{"id": "m", "revision": null, "precision": null}}, '
            '"previous_model": {"id": "m", "revision": "r1", "precision": "int8"}, "at": "2026-01-02T03:04:05.678Z"}',
            f'{{"type":"image.caption_updated","event_id":5,"data":{{"id":"{ID}","caption":"a dog",'
            '"model":{"id":"m","revision":null,"precision":null},'
            '"previous_model":{"id":"m","revision":"r1","precision":"int8"},"at":"2026-01-02T03:04:05.678Z"}}',
        ),
    ],
)
def test_each_payload_shape_goes_out_as_this_exact_json(event: Event, sse_data: str, webhook_body: str) -> None:
    assert message_of(event).data == sse_data
    assert delivery_body(event) == webhook_body
