"""Background processing end to end in process: outages, re-queueing, reuse, concurrency."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import wait_for_status
from tests.in_process import services_of
from tests.support import FakeInference, make_image_bytes, problem_body, upload


@pytest.mark.gateway_settings(inference_probe_interval_s=60)
async def test_inference_down_ends_unavailable_then_retry_completes(
    client: AsyncTestClient[Any], fake_inference: FakeInference
) -> None:
    fake_inference.up = False
    image_id = await upload(client)
    details = await wait_for_status(client, image_id)
    assert details["status"] == "failed"
    assert details["caption"]["status"] == "unavailable"
    assert details["caption"]["text"] is None
    assert "could not be reached" in details["error"]
    assert details["thumbnails"]["small"] is not None  # metadata and thumbnails did not wait for captions
    assert (await client.get(f"/api/images/{image_id}/thumbnails/small")).status_code == 200

    fake_inference.up = True
    response = await client.post(f"/api/images/{image_id}/retry")
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    details = await wait_for_status(client, image_id)
    assert details["status"] == "completed"
    assert details["error"] is None
    assert details["caption"]["status"] == "completed"


async def test_gateway_requeues_by_itself_once_inference_is_ready(
    client: AsyncTestClient[Any], fake_inference: FakeInference
) -> None:
    fake_inference.up = False
    ids = [await upload(client, make_image_bytes(color=(10 * n, 0, 0))) for n in range(3)]
    for image_id in ids:
        assert (await wait_for_status(client, image_id))["caption"]["status"] == "unavailable"
    decode_calls = len(fake_inference.caption_requests)
    fake_inference.up = True
    for image_id in ids:
        details = await wait_for_status(client, image_id, statuses=("completed",))
        assert details["caption"]["text"]
    assert len(fake_inference.caption_requests) == decode_calls + 3
    stats = (await client.get("/api/stats")).json()
    assert stats["captions"]["completed"] == 3
    assert stats["captions"]["unavailable"] == 0


async def test_client_error_from_inference_is_a_failed_caption_not_retried(
    client: AsyncTestClient[Any], fake_inference: FakeInference
) -> None:
    fake_inference.scripted.append(httpx.Response(422, json=problem_body(422, "The image cannot be decoded.")))
    image_id = await upload(client)
    details = await wait_for_status(client, image_id)
    assert details["status"] == "failed"
    assert details["caption"]["status"] == "failed"
    assert "cannot be decoded" in details["caption"]["error"]
    assert len(fake_inference.caption_requests) == 1


async def test_identical_upload_reuses_the_caption(client: AsyncTestClient[Any], fake_inference: FakeInference) -> None:
    data = make_image_bytes((50, 50))
    first = await wait_for_status(client, await upload(client, data))
    second = await wait_for_status(client, await upload(client, data, "copy.jpg"))
    assert second["caption"]["text"] == first["caption"]["text"]
    assert second["status"] == "completed"
    assert len(fake_inference.caption_requests) == 1


@pytest.mark.gateway_settings(workers=2)
async def test_fifty_simultaneous_uploads_all_finish_once(
    client: AsyncTestClient[Any], fake_inference: FakeInference
) -> None:
    images = [make_image_bytes((40 + n, 30), color=(n * 5, 100, 200)) for n in range(50)]
    responses = await asyncio.gather(
        *(
            client.post("/api/images", files={"image": (f"{n}.jpg", data, "image/jpeg")})
            for n, data in enumerate(images)
        )
    )
    assert [response.status_code for response in responses] == [202] * 50
    ids = {response.json()["id"] for response in responses}
    assert len(ids) == 50
    for image_id in ids:
        assert (await wait_for_status(client, image_id, timeout_s=60))["status"] == "completed"
    assert len(fake_inference.caption_requests) == 50  # each image captioned exactly once
    stats = (await client.get("/api/stats")).json()
    assert stats["total"] == 50
    assert stats["by_status"]["completed"] == 50


@pytest.mark.gateway_settings(workers=0)
async def test_workers_zero_accepts_but_pauses_processing(client: AsyncTestClient[Any]) -> None:
    image_id = await upload(client)
    assert services_of(client.app).worker.loop_names == []  # nothing that could claim it runs
    assert (await client.get(f"/api/images/{image_id}")).json()["status"] == "pending"
