"""The running services of one app and the ``provide_*`` functions handlers get them through."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers.base import BaseRouteHandler

from gateway.catalog import ImageCatalog
from gateway.errors import AuthenticationRequiredError
from gateway.events.feed import EventFeed
from gateway.events.webhooks.sender import WebhookSender
from gateway.intake.uploads import UploadService
from gateway.metrics import GatewayMetrics
from gateway.persistence.db import Database
from gateway.processing.recaptioner import Recaptioner
from gateway.processing.worker import Worker
from gateway.replicas.client import InferenceClient
from gateway.settings import GatewaySettings
from gateway.storage import BlobStore
from gateway.storage.sweeper import OrphanSweeper


@dataclass
class GatewayServices:
    """Everything the lifespan creates; kept on ``app.state.services``."""

    settings: GatewaySettings
    database: Database
    storage: BlobStore
    inference: InferenceClient
    metrics: GatewayMetrics
    uploads: UploadService
    worker: Worker
    webhooks: WebhookSender
    sweeper: OrphanSweeper
    started_monotonic: float
    events: EventFeed
    catalog: ImageCatalog
    recaptioner: Recaptioner

    @property
    def uptime_s(self) -> float:
        return round(time.monotonic() - self.started_monotonic, 1)


def _services(state: State) -> GatewayServices:
    services: GatewayServices = state.services
    return services


def provide_services(state: State) -> GatewayServices:
    return _services(state)


async def require_api_key(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """Guard for writes: when ``GATEWAY_API_KEY`` is set, demand ``Authorization: Bearer <key>``.

    Async on purpose: Litestar runs a sync guard in a worker thread, a thread hop per upload.
    """
    expected = _services(connection.app.state).settings.api_key
    if not expected:
        return
    scheme, _, supplied = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(supplied.strip().encode(), expected.encode()):
        raise AuthenticationRequiredError("This endpoint needs 'Authorization: Bearer <GATEWAY_API_KEY>'.")
