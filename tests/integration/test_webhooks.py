"""Webhook delivery against a real HTTP receiver, on SQLite and PostgreSQL: signed, durable, at least once."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from gateway.events.webhooks.outbox import ClaimedDelivery, WebhookOutbox
from gateway.events.webhooks.sender import WebhookSender
from gateway.metrics import GatewayMetrics
from gateway.persistence.db import Database, build_engine, upgrade_schema
from gateway.persistence.models import Event, WebhookDelivery
from gateway.settings import GatewaySettings
from tests.repository_backends import BACKENDS, database_url_for
from tests.unit.test_webhook_signing import SECRET
from tests.webhook_receiver import WebhookReceiver

SenderFactory = Callable[..., WebhookSender]


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with database_url_for(request.param, tmp_path) as url:
        engine = build_engine(url)
        upgrade_schema(engine)
        yield Database(engine)
        engine.dispose()


@pytest.fixture
async def make_sender(database: Database) -> AsyncIterator[SenderFactory]:
    senders: list[WebhookSender] = []

    def factory(*urls: str, **overrides: Any) -> WebhookSender:
        values: dict[str, Any] = {
            "webhook_urls": ",".join(urls),
            "webhook_secret": SECRET,
            "webhook_backoff_s": 0.05,
            "webhook_backoff_max_s": 0.1,
            "webhook_timeout_s": 2,
        }
        sender = WebhookSender(GatewaySettings(**(values | overrides)), database, GatewayMetrics())
        senders.append(sender)
        return sender

    yield factory
    for sender in senders:
        await sender.stop()


def record_events(database: Database, count: int, kind: str = "image.completed") -> list[int]:
    def write(session: Any) -> list[int]:
        events = [Event(type=kind, image_id=f"{number:032x}", status="completed", caption=f"caption {number}")
                  for number in range(count)]  # fmt: skip
        session.add_all(events)
        session.flush()
        return [event.id for event in events]

    return database.run_sync(write)


async def run_until(sender: WebhookSender, done: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "deliveries did not arrive in time"
        await sender.run_once()
        await asyncio.sleep(0.02)


def pending_deliveries(database: Database) -> int:
    query = select(func.count()).select_from(WebhookDelivery)
    return int(database.run_sync(lambda session: session.execute(query).scalar_one(), write=False))


async def test_every_event_is_posted_once_signed_with_the_event_id(
    database: Database, make_sender: SenderFactory
) -> None:
    with WebhookReceiver() as receiver:
        sender = make_sender(receiver.url)
        await sender.run_once()  # registers the URL: it starts with the events after this point
        ids = record_events(database, 5)
        await run_until(sender, lambda: len(receiver.received) >= 5)
        await sender.run_once()
    assert sorted(receiver.event_ids()) == ids
    for item in receiver.received:
        payload = Webhook(SECRET).verify(item.body, item.headers)
        assert payload["type"] == "image.completed"
        assert payload["event_id"] == int(item.headers["webhook-id"])
        assert set(payload["data"]) == {"id", "status", "caption", "caption_status", "error", "at"}
        assert payload["data"]["at"].endswith("Z")
    assert pending_deliveries(database) == 0
    assert sender.metrics.webhook_deliveries.labels("delivered")._value.get() == 5


async def test_a_new_url_gets_only_events_after_it_was_configured(
    database: Database, make_sender: SenderFactory
) -> None:
    record_events(database, 3)
    with WebhookReceiver() as receiver:
        sender = make_sender(receiver.url)
        await sender.run_once()
        later = record_events(database, 2)
        await run_until(sender, lambda: len(receiver.received) >= 2)
    assert sorted(receiver.event_ids()) == later


async def test_a_receiver_that_was_down_gets_every_event_once_it_is_back(
    database: Database, make_sender: SenderFactory
) -> None:
    receiver = WebhookReceiver()
    sender = make_sender(receiver.url)
    await sender.run_once()
    ids = record_events(database, 4)
    # Refused connections: each is retried later, with the same webhook-id.
    await run_until(sender, lambda: sender.metrics.webhook_failures._value.get() >= 8)
    with receiver.start():
        await run_until(sender, lambda: len(receiver.received) >= 4)
    assert sorted(receiver.event_ids()) == ids
    assert pending_deliveries(database) == 0


async def test_a_410_disables_that_url_and_the_others_keep_receiving(
    database: Database, make_sender: SenderFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    with WebhookReceiver(status=410) as gone, WebhookReceiver() as alive:
        sender = make_sender(gone.url, alive.url)
        await sender.run_once()
        first = record_events(database, 3)
        await run_until(sender, lambda: len(alive.received) >= 3 and len(gone.received) >= 1)
        second = record_events(database, 2)
        await run_until(sender, lambda: len(alive.received) >= 5)
        await sender.run_once()
    assert set(gone.event_ids()) <= set(first)  # only what was already in flight with the first 410
    assert sorted(alive.event_ids()) == first + second
    assert "webhook_disabled" in capsys.readouterr().out


async def test_a_failing_receiver_is_retried_with_backoff_then_given_up_after_the_max_age(
    database: Database, make_sender: SenderFactory
) -> None:
    with WebhookReceiver(status=500) as failing:
        sender = make_sender(failing.url, webhook_max_age_h=1.5 / 3600)
        await sender.run_once()
        (event_id,) = record_events(database, 1)
        await run_until(sender, lambda: pending_deliveries(database) == 0 and len(failing.received) >= 2)
    assert set(failing.event_ids()) == {event_id}
    assert sender.metrics.webhook_deliveries.labels("gave_up")._value.get() == 1
    stamps = [int(item.headers["webhook-timestamp"]) for item in failing.received]
    assert stamps == sorted(stamps)


async def test_two_gateways_share_the_outbox_without_sending_an_event_twice(
    database: Database, make_sender: SenderFactory
) -> None:
    with WebhookReceiver() as receiver:
        first, second = make_sender(receiver.url), make_sender(receiver.url)
        await first.run_once()
        ids = record_events(database, 30)

        async def both_rounds() -> None:
            await asyncio.gather(first.run_once(), second.run_once())

        deadline = time.monotonic() + 30
        while len(receiver.received) < 30:
            assert time.monotonic() < deadline
            await both_rounds()
    assert sorted(receiver.event_ids()) == ids


async def test_a_delivery_held_by_a_gateway_that_died_mid_send_is_sent_by_another_after_its_lease(
    database: Database, make_sender: SenderFactory
) -> None:
    with WebhookReceiver() as receiver:
        survivor = make_sender(receiver.url)
        await survivor.run_once()  # registers the URL
        [event_id] = record_events(database, 1)
        urls = (receiver.url,)

        def dead_gateway_claims(session: Any) -> list[ClaimedDelivery]:  # then dies before sending
            outbox = WebhookOutbox(session)
            outbox.fan_out(urls)
            return outbox.claim_due(urls, "dead-gateway", lease_s=2.0, limit=10)

        assert [delivery.event_id for delivery in database.run_sync(dead_gateway_claims)] == [event_id]
        assert await survivor.run_once() == 0  # the claim still holds
        await run_until(survivor, lambda: len(receiver.received) >= 1)
    assert receiver.event_ids() == [event_id]
    assert pending_deliveries(database) == 0


def test_a_delivery_body_is_the_event_as_json(database: Database) -> None:
    from gateway.events.webhooks.outbox import delivery_body

    (event_id,) = record_events(database, 1, kind="image.failed")
    event = database.run_sync(lambda session: session.get(Event, event_id), write=False)
    body = json.loads(delivery_body(event))
    assert body["type"] == "image.failed"
    assert body["event_id"] == event_id
    assert body["data"]["id"] == "0" * 32
