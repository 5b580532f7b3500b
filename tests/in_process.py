"""A gateway app whose lifespan runs in the test's own event loop, driven over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar

from gateway.app import create_app
from gateway.deps import GatewayServices
from gateway.settings import GatewaySettings
from tests.support import FakeInference, make_image_bytes


@asynccontextmanager
async def running_gateway(settings: GatewaySettings, fake_inference: FakeInference) -> AsyncIterator[Litestar]:
    app = create_app(settings, inference_transport=fake_inference.transport)
    async with app.lifespan():
        yield app


def services_of(app: Litestar) -> GatewayServices:
    services: GatewayServices = app.state.services
    return services


async def upload(app: Litestar) -> str:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        response = await client.post("/api/images", files={"image": ("photo.jpg", make_image_bytes(), "image/jpeg")})
    assert response.status_code == 202, response.text
    image_id: str = response.json()["id"]
    return image_id
