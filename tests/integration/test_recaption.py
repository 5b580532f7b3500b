"""Re-captioning when the model changes: what is queued, what replaces what, what a failure keeps."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from gateway.deps import GatewayServices
from gateway.persistence.event_log import event_data, events_after
from tests.conftest import wait_for_status
from tests.support import FakeInference, make_image_bytes, problem_body, upload

pytestmark = pytest.mark.gateway_settings(recaption_per_s=0)


@pytest.fixture
def fake_inference() -> FakeInference:
    return FakeInference(revision="r1", caption_names_revision=True)


async def completed_images(client: AsyncTestClient[Any], count: int) -> list[str]:
    ids = [await upload(client, make_image_bytes((40 + n, 30))) for n in range(count)]
    for image_id in ids:
        assert (await wait_for_status(client, image_id))["status"] == "completed"
    return ids


async def switch_model(client: AsyncTestClient[Any], fake_inference: FakeInference, revision: str) -> None:
    """Serve another revision, and let the gateway's probe see it (as a restarted replica would be seen)."""
    fake_inference.revision = revision
    services: GatewayServices = client.app.state.services
    await services.inference.readiness()


async def recaption_stats_when_idle(client: AsyncTestClient[Any], timeout_s: float = 20) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        counts: dict[str, int] = (await client.get("/api/stats")).json()["recaption"]
        if counts["queued"] == 0:
            return counts
        assert time.monotonic() < deadline, counts
        await asyncio.sleep(0.05)


async def caption_updates(client: AsyncTestClient[Any]) -> list[dict[str, Any]]:
    services: GatewayServices = client.app.state.services
    events = await services.database.read(lambda session: events_after(session, 0))
    return [asdict(event_data(event)) for event in events if event.type == "image.caption_updated"]


async def test_captions_of_the_previous_model_are_remade_by_the_one_now_served(
    client: AsyncTestClient[Any], fake_inference: FakeInference
) -> None:
    old = await completed_images(client, 3)
    before = {image_id: (await client.get(f"/api/images/{image_id}")).json()["caption"] for image_id in old}
    assert {caption["model"]["revision"] for caption in before.values()} == {"r1"}
    await switch_model(client, fake_inference, "r2")
    [new] = await completed_images(client, 1)  # the bytes of old[0]: its caption is not reused, r1 made it

    response = await client.post("/api/captions/recaption", json={"all": False})

    assert response.status_code == 202
    assert response.json() == {"queued": 3}
    assert await recaption_stats_when_idle(client) == {"queued": 0, "done": 3, "failed": 0}
    for image_id in old:
        caption = (await client.get(f"/api/images/{image_id}")).json()["caption"]
        assert caption["model"] == {"id": "fake-blip", "revision": "r2"}
        assert caption["precision"] == "int8"
        assert caption["text"] != before[image_id]["text"]
        assert caption["recaption"] == {"status": "done", "error": None}
    assert (await client.get(f"/api/images/{new}")).json()["caption"]["recaption"] is None
    updates = await caption_updates(client)
    assert sorted(update["id"] for update in updates) == sorted(old)
    for update in updates:
        assert set(update) == {"id", "caption", "model", "previous_model", "at"}
        assert update["model"] == {"id": "fake-blip", "revision": "r2", "precision": "int8"}
        assert update["previous_model"] == {"id": "fake-blip", "revision": "r1", "precision": "int8"}
    # nothing is left to re-make: a second request queues nothing
    assert (await client.post("/api/captions/recaption", json={"all": False})).json() == {"queued": 0}


async def test_all_queues_every_caption_even_those_of_the_model_now_served(
    client: AsyncTestClient[Any], fake_inference: FakeInference
) -> None:
    ids = await completed_images(client, 2)

    response = await client.post("/api/captions/recaption", json={"all": True})

    assert response.json() == {"queued": 2}
    assert await recaption_stats_when_idle(client) == {"queued": 0, "done": 2, "failed": 0}
    assert sorted(update["id"] for update in await caption_updates(client)) == sorted(ids)


async def test_a_refused_recaption_keeps_the_old_caption_and_notes_the_failure(
    client: AsyncTestClient[Any], fake_inference: FakeInference
) -> None:
    [image_id] = await completed_images(client, 1)
    old = (await client.get(f"/api/images/{image_id}")).json()["caption"]
    await switch_model(client, fake_inference, "r2")
    fake_inference.scripted.append(httpx.Response(422, json=problem_body(422, "The image cannot be decoded.")))

    assert (await client.post("/api/captions/recaption", json={"all": False})).json() == {"queued": 1}

    assert await recaption_stats_when_idle(client) == {"queued": 0, "done": 0, "failed": 1}
    details = (await client.get(f"/api/images/{image_id}")).json()
    assert details["status"] == "completed"
    assert details["caption"]["text"] == old["text"]
    assert details["caption"]["model"] == old["model"]
    assert details["caption"]["recaption"]["status"] == "failed"
    assert "cannot be decoded" in details["caption"]["recaption"]["error"]
    assert await caption_updates(client) == []
    # the failed one was still not made by the model now served: asked again, it is queued and re-made
    assert (await client.post("/api/captions/recaption", json={"all": False})).json() == {"queued": 1}
    assert await recaption_stats_when_idle(client) == {"queued": 0, "done": 1, "failed": 0}


@pytest.mark.gateway_settings(api_key="s3cret")
async def test_recaption_needs_the_api_key_when_one_is_set(client: AsyncTestClient[Any]) -> None:
    refused = await client.post("/api/captions/recaption", json={"all": True})
    accepted = await client.post(
        "/api/captions/recaption", json={"all": True}, headers={"Authorization": "Bearer s3cret"}
    )
    assert refused.status_code == 401
    assert accepted.status_code == 202


async def test_without_a_ready_replica_the_model_now_served_is_unknown_so_only_all_is_possible(
    client: AsyncTestClient[Any], fake_inference: FakeInference
) -> None:
    fake_inference.up = False
    unknown = await client.post("/api/captions/recaption", json={"all": False})
    assert unknown.status_code == 503
    assert "model now served is unknown" in unknown.json()["detail"]
    assert (await client.post("/api/captions/recaption", json={"all": True})).status_code == 202


async def test_a_body_that_is_not_the_documented_one_is_400(client: AsyncTestClient[Any]) -> None:
    response = await client.post("/api/captions/recaption", json={"all": "maybe"})
    assert response.status_code == 400


@pytest.mark.gateway_settings(recaption_concurrency=0)  # this gateway re-captions nothing: the queue stays
async def test_a_thumbnail_is_not_cached_for_long_while_its_caption_is_queued_for_a_new_one(
    client: AsyncTestClient[Any],
) -> None:
    [image_id] = await completed_images(client, 1)
    thumbnail = f"/api/images/{image_id}/thumbnails/small"
    assert "immutable" in (await client.get(thumbnail)).headers["cache-control"]

    await client.post("/api/captions/recaption", json={"all": True})

    assert (await client.get(thumbnail)).headers["cache-control"] == "no-cache"
    assert (await client.get("/api/stats")).json()["recaption"] == {"queued": 1, "done": 0, "failed": 0}


@pytest.mark.parametrize("value", [0, 1, "false", None])
async def test_all_must_be_a_json_boolean(client: AsyncTestClient[Any], value: object) -> None:
    response = await client.post("/api/captions/recaption", json={"all": value})
    assert response.status_code == 400
