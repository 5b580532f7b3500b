"""A gateway app whose lifespan runs in the test's own event loop, driven over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar

from gateway.app import create_app
from gateway.deps import GatewayServices
from gateway.settings import GatewaySettings
from tests.support import FakeInference, upload


@asynccontextmanager
async def running_gateway(settings: GatewaySettings, fake_inference: FakeInference) -> AsyncIterator[Litestar]:
    app = create_app(settings, inference_transport=fake_inference.transport)
    async with app.lifespan():
        yield app


def services_of(app: Litestar) -> GatewayServices:
    services: GatewayServices = app.state.services
    return services


async def upload_to(app: Litestar) -> str:
    """Upload one generated photo to an app whose lifespan the test runs itself."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        return await upload(client)
