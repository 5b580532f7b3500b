"""create_app(): the gateway's Litestar application, its lifespan and its routes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import httpx
import structlog
from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin

from gateway.api.events import EventsController
from gateway.api.health import HealthController
from gateway.api.images import ImagesController
from gateway.api.stats import StatsController
from gateway.api.thumbnails import ThumbnailsController
from gateway.db import Database, build_engine, migrate
from gateway.deps import GatewayServices
from gateway.event_feed import EventFeed
from gateway.inference_client import InferenceClient
from gateway.metrics import GatewayMetrics
from gateway.middleware import request_id_middleware
from gateway.pipeline import ImagePipeline
from gateway.problems import EXCEPTION_HANDLERS
from gateway.settings import GatewaySettings
from gateway.storage import ImageStorage
from gateway.uploads import UploadService
from gateway.worker import Worker

log = structlog.get_logger("gateway.app")
API_VERSION = "1.0.0"


def create_app(
    settings: GatewaySettings | None = None, *, inference_transport: httpx.AsyncBaseTransport | None = None
) -> Litestar:
    """Build the app; resources are created in the lifespan. ``inference_transport`` is for tests."""
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services = await _start_services(settings, inference_transport)
        app.state.services = services
        try:
            yield
        finally:
            await services.worker.stop()
            await services.events.stop()
            await services.inference.aclose()
            services.database.dispose()
            log.info("gateway_stopped")

    app = Litestar(
        route_handlers=[ImagesController, ThumbnailsController, StatsController, HealthController, EventsController],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        logging_config=None,
        request_max_body_size=settings.max_upload_bytes,
        openapi_config=OpenAPIConfig(
            title="Image pipeline gateway",
            version=API_VERSION,
            description="Upload JPEG/PNG images; read metadata, thumbnails, captions and statistics.",
            path="/docs",
            render_plugins=[SwaggerRenderPlugin(path="/"), RedocRenderPlugin(path="/redoc")],
        ),
    )
    # Litestar runs app-level middleware only for matched routes; wrapping its ASGI handler gives
    # 404 and 405 answers (and their logs) a request id too.
    app.asgi_handler = request_id_middleware(app.asgi_handler)
    return app


async def _start_services(
    settings: GatewaySettings, inference_transport: httpx.AsyncBaseTransport | None
) -> GatewayServices:
    storage = ImageStorage(settings.data_dir)
    await anyio.to_thread.run_sync(storage.prepare)
    engine = build_engine(settings.resolved_database_url)
    await anyio.to_thread.run_sync(migrate, engine)
    database = Database(engine)
    metrics = GatewayMetrics()
    inference = InferenceClient(settings, transport=inference_transport)
    pipeline = ImagePipeline(settings, database, storage, inference, metrics)
    worker = Worker(settings, database, pipeline, inference, metrics)
    services = GatewayServices(
        settings=settings,
        database=database,
        storage=storage,
        inference=inference,
        metrics=metrics,
        uploads=UploadService(settings, database, storage, metrics),
        worker=worker,
        started_monotonic=time.monotonic(),
        events=EventFeed(settings, database),
    )
    await services.events.start()
    await worker.start()
    log.info(
        "gateway_started",
        database=engine.url.render_as_string(hide_password=True),
        data_dir=str(storage.root),
        inference_url=settings.inference_url,
        workers=settings.workers,
    )
    return services
