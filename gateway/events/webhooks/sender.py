"""The webhook loop of one gateway: fan events out, claim due deliveries, POST them signed, settle.

A 2xx answer delivers; 410 Gone disables that URL (logged); anything else, or no answer, is
retried with exponential back-off and jitter until the delivery is ``GATEWAY_WEBHOOK_MAX_AGE_H``
old. The state is in the database, so deliveries survive a restart and a SIGKILL (at least once:
a delivery sent but not yet settled when the gateway dies is sent again; ``webhook-id`` lets the
receiver drop the duplicate).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from datetime import timedelta

import httpx
import structlog

from gateway.errors import StorageUnavailableError
from gateway.events.webhooks.outbox import ClaimedDelivery, WebhookOutbox
from gateway.events.webhooks.signing import signed_headers
from gateway.metrics import GatewayMetrics
from gateway.persistence.db import Database
from gateway.persistence.models import utc_now
from gateway.settings import GatewaySettings
from servicekit.background import BackgroundLoops

log = structlog.get_logger("gateway.webhooks")
LEASE_PER_TIMEOUT = 3


def retry_delay_s(attempts: int, base_s: float, max_s: float) -> float:
    """Exponential back-off with equal jitter: half the doubled delay fixed, half random."""
    ceiling = min(max_s, base_s * 2.0 ** max(0, attempts - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 (jitter, not cryptography)


class WebhookSender:
    """Runs while the gateway does; does nothing when ``GATEWAY_WEBHOOK_URLS`` is empty."""

    def __init__(
        self,
        settings: GatewaySettings,
        database: Database,
        metrics: GatewayMetrics,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.metrics = metrics
        self.urls = settings.webhook_urls
        self._key = settings.webhook_key
        self._token = uuid.uuid4().hex
        self._lease_s = settings.webhook_timeout_s * LEASE_PER_TIMEOUT
        self._client = httpx.AsyncClient(transport=transport, timeout=settings.webhook_timeout_s)
        self._loops = BackgroundLoops("gateway.webhooks")

    async def start(self) -> None:
        """Register the URLs (a new one gets the events from now on), then run the loop."""
        if self.urls:
            urls = self.urls
            with contextlib.suppress(StorageUnavailableError):  # the loop registers them once it can
                await self.database.write(lambda session: WebhookOutbox(session).register(urls))
            self._loops.start("gateway-webhooks", self._loop)
            log.info("webhooks_started", urls=len(self.urls))

    async def stop(self) -> None:
        if self._loops.names:
            await self._loops.stop()
            with contextlib.suppress(StorageUnavailableError):
                await self.database.write(lambda session: WebhookOutbox(session).release(self._token))
        await self._client.aclose()

    async def _loop(self) -> None:
        while True:
            try:
                sent = await self.run_once()
            except StorageUnavailableError as exc:
                log.warning("webhooks_postponed", error=exc.detail)
                sent = 0
            if not sent:
                await asyncio.sleep(self.settings.webhook_poll_interval_s)

    async def run_once(self) -> int:
        """One round: fan out, claim what is due, send it; returns how many were sent."""
        urls = self.urls
        await self.database.write(lambda session: WebhookOutbox(session).fan_out(urls))
        claimed = await self.database.write(
            lambda session: WebhookOutbox(session).claim_due(
                urls, self._token, self._lease_s, self.settings.webhook_concurrency
            )
        )
        await asyncio.gather(*(self._send(delivery) for delivery in claimed))
        oldest = await self.database.read(lambda session: WebhookOutbox(session).oldest_pending_created_at(urls))
        self.metrics.webhook_oldest_pending.set((utc_now() - oldest).total_seconds() if oldest else 0)
        return len(claimed)

    async def _send(self, delivery: ClaimedDelivery) -> None:
        body = delivery.body.encode()
        headers = signed_headers(self._key, str(delivery.event_id), int(time.time()), body)
        context = {"url": delivery.url, "event_id": delivery.event_id, "attempt": delivery.attempts + 1}
        try:
            response = await self._client.post(delivery.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            await self._failed(delivery, f"{type(exc).__name__}: {exc}".strip(": "), context)
            return
        if response.is_success:
            await self.database.write(lambda session: WebhookOutbox(session).delivered(delivery.id, self._token))
            self.metrics.webhook_deliveries.labels("delivered").inc()
            log.info("webhook_delivered", status=response.status_code, **context)
        elif response.status_code == 410:
            reason = f"{delivery.url} answered 410 Gone"
            dropped = await self.database.write(lambda session: WebhookOutbox(session).disable(delivery.url, reason))
            self.metrics.webhook_deliveries.labels("disabled").inc()
            log.warning("webhook_disabled", reason=reason, dropped=dropped, **context)
        else:
            await self._failed(delivery, f"answered {response.status_code}", context)

    async def _failed(self, delivery: ClaimedDelivery, error: str, context: dict[str, object]) -> None:
        self.metrics.webhook_failures.inc()
        age = utc_now() - delivery.created_at
        if age >= timedelta(hours=self.settings.webhook_max_age_h):
            await self.database.write(lambda session: WebhookOutbox(session).give_up(delivery.id, self._token))
            self.metrics.webhook_deliveries.labels("gave_up").inc()
            log.warning("webhook_given_up", error=error, age_s=round(age.total_seconds()), **context)
            return
        settings = self.settings
        delay_s = retry_delay_s(delivery.attempts + 1, settings.webhook_backoff_s, settings.webhook_backoff_max_s)
        next_attempt_at = utc_now() + timedelta(seconds=delay_s)
        await self.database.write(
            lambda session: WebhookOutbox(session).retry_at(delivery.id, self._token, next_attempt_at, error)
        )
        self.metrics.webhook_deliveries.labels("failed").inc()
        log.info("webhook_failed", error=error, retry_in_s=round(delay_s, 2), **context)
