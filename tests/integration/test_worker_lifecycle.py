"""The worker's start and graceful stop, driven in the test's own event loop.

The app's lifespan runs here (not in a test client's portal thread), so the test can call the
worker directly and time its stop: a stop that hangs or leaves claims held would show up as an
image stuck in ``processing`` for a whole lease after the gateway went away.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.deps import GatewayServices
from gateway.persistence.models import Image, ImageStatus
from gateway.settings import GatewaySettings
from tests.in_process import running_gateway, services_of, upload_to
from tests.support import FakeInference, eventually

STOP_BUDGET_S = 5.0


async def stored_image(services: GatewayServices, image_id: str) -> Image:
    image = await services.database.read(lambda session: session.get(Image, image_id))
    assert image is not None
    return image


async def wait_for_a_caption_request(fake_inference: FakeInference) -> None:
    async def caption_requested() -> bool:
        return bool(fake_inference.caption_requests)

    await eventually(caption_requested)


@pytest.mark.gateway_settings(workers=2, poll_interval_s=0.2)
@pytest.mark.parametrize("idle_s", [0.0, 0.05, 0.3])
async def test_stop_at_the_moment_of_a_wakeup_ends_every_loop(
    settings: GatewaySettings, fake_inference: FakeInference, idle_s: float
) -> None:
    # A wakeup and a cancellation landing in the same loop iteration once swallowed the
    # cancellation (asyncio.wait_for on Python 3.11), and the loop ran on forever.
    async with running_gateway(settings, fake_inference) as app:
        worker = services_of(app).worker
        await asyncio.sleep(idle_s)
        worker.notify()
        async with asyncio.timeout(STOP_BUDGET_S):
            await worker.stop()
        assert worker.loop_names == []  # every loop ended: none is left to claim an upload
        image_id = await upload_to(app)
        assert (await stored_image(services_of(app), image_id)).status == ImageStatus.PENDING


@pytest.mark.gateway_settings(workers=1, lease_s=600)
async def test_stop_during_a_caption_gives_the_claim_back(
    settings: GatewaySettings, fake_inference: FakeInference
) -> None:
    fake_inference.delay_s = 30  # the caption is still on its way when the gateway stops
    async with running_gateway(settings, fake_inference) as app:
        services = services_of(app)
        image_id = await upload_to(app)

        await wait_for_a_caption_request(fake_inference)
        assert (await stored_image(services, image_id)).status == ImageStatus.PROCESSING
        async with asyncio.timeout(STOP_BUDGET_S):
            await services.worker.stop()
        image = await stored_image(services, image_id)
    assert image.status == ImageStatus.PENDING, "a gracefully stopped gateway must not sit on its claims"
    assert image.claim_token is None
    assert image.thumbnails_done, "work finished before the stop is kept"


@pytest.mark.gateway_settings(workers=2, lease_s=600, poll_interval_s=0.05)
async def test_repeated_stops_while_claiming_never_strand_an_image(
    settings: GatewaySettings, fake_inference: FakeInference
) -> None:
    # Stopping while a claim is being committed must give that claim back too, or the image
    # waits a whole lease for another gateway to take it over.
    fake_inference.delay_s = 30
    for attempt in range(5):
        async with running_gateway(settings, fake_inference) as app:
            services = services_of(app)
            image_id = await upload_to(app)
            await asyncio.sleep(attempt * 0.003)
            async with asyncio.timeout(STOP_BUDGET_S):
                await services.worker.stop()
            image = await stored_image(services, image_id)
        assert image.status == ImageStatus.PENDING, f"attempt {attempt}: {image.status}"
        assert image.claim_token is None


@pytest.mark.gateway_settings(workers=1, poll_interval_s=0.05)
async def test_a_stopped_gateway_resumes_given_back_work_on_the_next_start(
    settings: GatewaySettings, fake_inference: FakeInference
) -> None:
    fake_inference.delay_s = 30
    async with running_gateway(settings, fake_inference) as app:
        services = services_of(app)
        image_id = await upload_to(app)

        await wait_for_a_caption_request(fake_inference)
    fake_inference.delay_s = 0
    async with running_gateway(settings, fake_inference) as app:
        services = services_of(app)

        async def completed() -> bool:
            return (await stored_image(services, image_id)).status == ImageStatus.COMPLETED

        await eventually(completed)
