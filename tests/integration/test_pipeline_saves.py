"""Pipeline results are saved before they are logged, and captions that never succeed stop looping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import httpx
import pytest
import structlog
from litestar.testing import AsyncTestClient
from sqlmodel import Session

from gateway.deps import GatewayServices
from gateway.errors import StorageUnavailableError
from gateway.persistence.db import Database
from gateway.persistence.repository import ImageRepository
from gateway.processing.pipeline import ImagePipeline
from tests.conftest import wait_for_status
from tests.support import FakeInference, upload

T = TypeVar("T")


class WritesFail(Database):
    """The real database for reads; every write fails like a database that went away."""

    async def write(self, work: Callable[[Session], T]) -> T:
        raise StorageUnavailableError("The database could not be used: OperationalError.")


def stage_lines(logs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(line["event"], line["stage"]) for line in logs if line["event"].startswith("stage_")]


@pytest.mark.gateway_settings(workers=0)
async def test_no_stage_completed_line_when_the_save_fails_then_each_once_it_is_saved(
    client: AsyncTestClient[Any],
) -> None:
    image_id = await upload(client)
    services: GatewayServices = client.app.state.services
    image = services.database.run_sync(lambda session: ImageRepository(session).claim_next("t", 60))
    assert image is not None
    assert image.id == image_id
    failing = ImagePipeline(replace(services.worker.pipeline.services, database=WritesFail(services.database.engine)))
    with structlog.testing.capture_logs() as logs, pytest.raises(StorageUnavailableError):
        await failing.run(image, "t")
    assert stage_lines(logs) == []

    with structlog.testing.capture_logs() as logs:
        await services.worker.pipeline.run(image, "t")
    assert stage_lines(logs) == [
        ("stage_completed", stage) for stage in ("decode", "metadata", "thumbnails", "caption")
    ]
    assert (await wait_for_status(client, image_id))["status"] == "completed"


async def wait_for_caption_failed(client: AsyncTestClient[Any], image_id: str, timeout_s: float = 30) -> dict[str, Any]:
    """Poll until the caption is ``failed`` for good (``unavailable`` is re-queued by the watcher)."""
    deadline = time.monotonic() + timeout_s
    while True:
        details = (await client.get(f"/api/images/{image_id}")).json()
        if details["status"] == "failed" and details["caption"]["status"] == "failed":
            return details
        assert time.monotonic() < deadline, f"caption still {details['caption']['status']}: {details}"
        await asyncio.sleep(0.05)


def server_errors(count: int) -> list[httpx.Response]:
    return [httpx.Response(500, json={"title": "boom", "status": 500, "detail": "boom"}) for _ in range(count)]


@pytest.mark.gateway_settings(inference_attempts=1, caption_max_cycles=3)
async def test_a_caption_that_always_fails_gives_up_after_max_cycles_and_retry_resets_the_count(
    client: AsyncTestClient[Any], fake_inference: FakeInference
) -> None:
    fake_inference.scripted = server_errors(100)
    image_id = await upload(client)
    details = await wait_for_caption_failed(client, image_id)
    assert "Gave up after 3 caption attempts" in details["caption"]["error"]
    assert "boom" in details["error"]
    assert len(fake_inference.caption_requests) == 3

    assert (await client.post(f"/api/images/{image_id}/retry")).status_code == 202
    await wait_for_caption_failed(client, image_id)
    assert len(fake_inference.caption_requests) == 6  # the count started again from zero


@pytest.mark.gateway_settings(inference_attempts=1, caption_max_cycles=2)
async def test_cycles_while_inference_is_not_ready_do_not_count(
    client: AsyncTestClient[Any], fake_inference: FakeInference
) -> None:
    fake_inference.up = False
    image_id = await upload(client)
    details = await wait_for_status(client, image_id)
    assert details["caption"]["status"] == "unavailable"
    down_requests = len(fake_inference.caption_requests)
    fake_inference.scripted = server_errors(100)
    fake_inference.up = True
    await wait_for_caption_failed(client, image_id)
    assert len(fake_inference.caption_requests) == down_requests + 2
