"""create_app(): the gateway's Litestar application, its lifespan and its routes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio.to_thread
import httpx
import structlog
from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from gateway.api.captions import CaptionsController
from gateway.api.events import EventsController
from gateway.api.health import HealthController
from gateway.api.images import ImagesController
from gateway.api.stats import StatsController
from gateway.api.thumbnails import ThumbnailsController
from gateway.catalog import ImageCatalog
from gateway.deps import GatewayServices, provide_services
from gateway.events.feed import EventFeed
from gateway.events.webhooks.sender import WebhookSender
from gateway.intake.uploads import UploadService
from gateway.metrics import GatewayMetrics
from gateway.persistence.db import Database, build_engine, upgrade_schema
from gateway.problems import EXCEPTION_HANDLERS
from gateway.processing.pipeline import ImagePipeline
from gateway.processing.recaptioner import Recaptioner
from gateway.processing.services import ProcessingServices
from gateway.processing.worker import Worker
from gateway.replicas.client import InferenceClient
from gateway.replicas.pool import CaptionTokensUnservableError
from gateway.settings import GatewaySettings
from gateway.storage import build_blob_store
from gateway.storage.sweeper import OrphanSweeper
from gateway.web.pages import template_config, web_routes
from servicekit.apidocs import api_docs_plugins
from servicekit.methods import head_as_get, options_allow_all
from servicekit.request_id import request_id_middleware

log = structlog.get_logger("gateway.app")
API_VERSION = "1.0.0"


def create_app(
    settings: GatewaySettings | None = None,
    *,
    inference_transport: httpx.AsyncBaseTransport | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> Litestar:
    """Build the app; resources are created in the lifespan. The transports are for tests."""
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # Each resource registers its own stop as it starts: a failed start closes exactly what was
        # opened, and a normal stop closes everything in the reverse order of the start.
        async with AsyncExitStack() as stack:
            app.state.services = await _start_services(stack, settings, inference_transport, webhook_transport)
            yield
        log.info("gateway_stopped")

    app = Litestar(
        route_handlers=[
            ImagesController,
            CaptionsController,
            ThumbnailsController,
            StatsController,
            HealthController,
            EventsController,
            *web_routes(),
        ],
        dependencies={"services": Provide(provide_services, sync_to_thread=False)},
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        logging_config=None,
        template_config=template_config(),
        request_max_body_size=settings.max_upload_bytes,
        openapi_config=OpenAPIConfig(
            title="Image pipeline gateway",
            version=API_VERSION,
            description="Upload JPEG/PNG images; read metadata, thumbnails, captions and statistics.",
            path="/docs",
            render_plugins=api_docs_plugins("/docs"),
        ),
    )
    # Litestar runs app-level middleware only for matched routes; wrapping its ASGI handler gives
    # 404 and 405 answers (and their logs) a request id too. HEAD runs the GET handler, body dropped;
    # OPTIONS lists every method of the path.
    app.asgi_handler = request_id_middleware(options_allow_all(head_as_get(app.asgi_handler)))
    return app


async def _start_services(
    stack: AsyncExitStack,
    settings: GatewaySettings,
    inference_transport: httpx.AsyncBaseTransport | None,
    webhook_transport: httpx.AsyncBaseTransport | None,
) -> GatewayServices:
    metrics = GatewayMetrics()
    storage = build_blob_store(settings, metrics)
    stack.push_async_callback(storage.aclose)
    await storage.start()  # never raises for a wrong endpoint/credential/bucket: readiness says which
    database = Database(build_engine(settings.resolved_database_url))
    stack.callback(database.dispose)
    await anyio.to_thread.run_sync(upgrade_schema, database.engine)
    inference = InferenceClient(settings, transport=inference_transport, metrics=metrics)
    stack.push_async_callback(inference.aclose)
    await _start_inference(inference)
    webhooks = WebhookSender(settings, database, metrics, transport=webhook_transport)
    stack.push_async_callback(webhooks.stop)
    processing = ProcessingServices(settings, database, storage, inference, metrics)
    services = GatewayServices(
        settings=settings,
        database=database,
        storage=storage,
        inference=inference,
        metrics=metrics,
        uploads=UploadService(settings, database, storage, metrics),
        worker=Worker(processing, ImagePipeline(processing)),
        webhooks=webhooks,
        sweeper=OrphanSweeper(storage, database, settings.storage_orphan_grace_s, settings.storage_check_interval_s),
        started_monotonic=time.monotonic(),
        events=EventFeed(settings, database),
        catalog=ImageCatalog(database),
        recaptioner=Recaptioner(processing),
    )
    await services.events.start()
    stack.push_async_callback(services.events.stop)
    await services.worker.start()
    stack.push_async_callback(services.worker.stop)
    services.recaptioner.start()
    stack.push_async_callback(services.recaptioner.stop)
    await webhooks.start()
    services.sweeper.start()
    stack.push_async_callback(services.sweeper.stop)
    log.info(
        "gateway_started",
        database=database.engine.url.render_as_string(hide_password=True),
        storage=storage.description,
        storage_ready=storage.readiness() or "ok",
        inference_url=settings.inference_url,
        workers=settings.workers,
    )
    return services


async def _start_inference(inference: InferenceClient) -> None:
    """Find and probe the replicas; a token setting no model can serve stops the start, in one sentence."""
    try:
        await inference.start()
    except CaptionTokensUnservableError as exc:
        log.error("gateway_start_refused", reason=str(exc))  # noqa: TRY400 - the sentence is the point
        raise
