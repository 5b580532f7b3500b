"""The events table: written in the state change's transaction, ids in commit order, pruned."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from gateway.events.feed import EventFeed
from gateway.persistence.aggregates import read_counters
from gateway.persistence.db import Database, build_engine, upgrade_schema
from gateway.persistence.event_log import events_after, newest_event_id, prune_events
from gateway.persistence.models import Image, utc_now
from gateway.persistence.repository import ImageRepository
from gateway.settings import GatewaySettings
from gateway.storage import new_image_id
from tests.repository_backends import BACKENDS, database_url_for


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with database_url_for(request.param, tmp_path) as url:
        db = Database(build_engine(url))
        upgrade_schema(db.engine)
        yield db
        db.dispose()


def new_image() -> Image:
    return Image(
        id=new_image_id(), filename="a.jpg", format="JPEG", mode="RGB", width=1, height=1, size_bytes=1, sha256="0" * 64
    )


def add(database: Database) -> str:
    image = new_image()
    database.run_sync(lambda session: ImageRepository(session).add(image))
    return image.id


class RollbackError(Exception):
    pass


def test_a_rolled_back_change_leaves_neither_event_nor_counter(database: Database) -> None:
    def add_then_fail(session: Session) -> None:
        ImageRepository(session).add(new_image())
        raise RollbackError

    with pytest.raises(RollbackError):
        database.run_sync(add_then_fail)
    assert database.run_sync(newest_event_id, write=False) == 0
    assert database.run_sync(read_counters, write=False) == {}


def test_event_ids_grow_in_commit_order_and_follow_each_state_change(database: Database) -> None:
    first, second = add(database), add(database)
    assert database.run_sync(lambda session: ImageRepository(session).delete(first))
    events = database.run_sync(lambda session: events_after(session, 0), write=False)
    assert [(event.type, event.image_id, event.status) for event in events] == [
        ("image.accepted", first, "pending"),
        ("image.accepted", second, "pending"),
        ("image.deleted", first, "deleted"),
    ]
    ids = [event.id for event in events]
    assert ids == sorted(ids)
    only_second = database.run_sync(lambda session: events_after(session, 0, image_id=second), write=False)
    assert [event.image_id for event in only_second] == [second]


def test_events_older_than_the_retention_are_pruned(database: Database) -> None:
    add(database)
    assert database.run_sync(lambda session: prune_events(session, utc_now() - timedelta(hours=1))) == 0
    settings = GatewaySettings(events_retention_h=1e-9)  # a few microseconds: everything is old
    assert asyncio.run(EventFeed(settings, database).prune_once()) == 1
    assert database.run_sync(lambda session: events_after(session, 0), write=False) == []
    add(database)
    assert len(database.run_sync(lambda session: events_after(session, 0), write=False)) == 1


async def test_a_wake_between_a_streams_read_and_its_wait_still_ends_the_wait(database: Database) -> None:
    feed = EventFeed(GatewaySettings(events_poll_interval_s=60), database)
    woken = feed.next_wakeup()  # taken before the stream reads the events table
    feed.wake()  # a NOTIFY that lands while the read runs
    async with asyncio.timeout(5):  # not the 60 s poll: the wake is not lost
        await feed.wait(woken, timeout_s=60)
    later = feed.next_wakeup()
    with pytest.raises(TimeoutError):  # a wait taken after that wake waits for the next one
        async with asyncio.timeout(0.2):
            await feed.wait(later, timeout_s=60)
