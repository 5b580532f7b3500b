"""The repository on SQLite and PostgreSQL: paging, claims under leases, concurrency, stats."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update

from gateway.errors import InvalidQueryError, StorageUnavailableError
from gateway.persistence.aggregates import StatusCounts
from gateway.persistence.db import Database, build_engine, upgrade_schema
from gateway.persistence.event_log import events_after
from gateway.persistence.models import CaptionModel, CaptionStatus, Image, ImageStatus, RejectionReason, utc_now
from gateway.persistence.repository import ImageRepository
from gateway.persistence.transitions import CaptionOutcome, CpuStagesResult, FinalState
from tests.repository_backends import BACKENDS, database_url_for, new_image


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url_for(request.param, tmp_path) as url:
        engine = build_engine(url)
        upgrade_schema(engine)
        upgrade_schema(engine)  # idempotent: a restart migrates nothing twice
        engine.dispose()
        yield url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(build_engine(database_url))
    yield db
    db.dispose()


def add_images(database: Database, count: int) -> list[str]:
    images = [new_image(created_at=utc_now() + timedelta(microseconds=n)) for n in range(count)]
    for image in images:
        database.run_sync(lambda session, image=image: ImageRepository(session).add(image))
    return [image.id for image in images]


def test_paging_walks_every_image_once_newest_first(database: Database) -> None:
    ids = add_images(database, 7)
    seen: list[str] = []
    cursor = None
    while True:
        page = database.run_sync(
            lambda session, cursor=cursor: ImageRepository(session).list_page(None, 3, cursor), write=False
        )
        seen += [image.id for image in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == list(reversed(ids))


def test_malformed_cursor_is_an_invalid_query(database: Database) -> None:
    with pytest.raises(InvalidQueryError):
        database.run_sync(lambda session: ImageRepository(session).list_page(None, 3, "garbage"), write=False)


def test_claims_follow_upload_order_and_are_exclusive(database: Database) -> None:
    ids = add_images(database, 3)
    claimed = [
        database.run_sync(lambda session, n=n: ImageRepository(session).claim_next(f"t{n}", 30)) for n in range(4)
    ]
    assert [image.id if image else None for image in claimed] == [*ids, None]
    assert all(image.status == ImageStatus.PROCESSING for image in claimed if image)


def test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_write(database: Database) -> None:
    (image_id,) = add_images(database, 1)
    first = database.run_sync(lambda session: ImageRepository(session).claim_next("dead", 2.0))
    assert first is not None
    assert database.run_sync(lambda session: ImageRepository(session).claim_next("other", 30)) is None
    deadline = time.monotonic() + 20
    second = None
    while second is None and time.monotonic() < deadline:
        time.sleep(0.1)
        second = database.run_sync(lambda session: ImageRepository(session).claim_next("alive", 30))
    assert second is not None
    assert second.id == image_id
    assert second.attempts == 2
    stages = CpuStagesResult(decode_ms=1.0)
    assert not database.run_sync(lambda session: ImageRepository(session).save_cpu_stages(image_id, "dead", stages))
    assert database.run_sync(lambda session: ImageRepository(session).save_cpu_stages(image_id, "alive", stages))


def test_released_claims_are_pending_again(database: Database) -> None:
    add_images(database, 2)
    database.run_sync(lambda session: ImageRepository(session).claim_next("mine", 30))
    assert database.run_sync(lambda session: ImageRepository(session).release_claims(["mine"])) == 1
    counts = database.run_sync(lambda session: ImageRepository(session).count_by_status(), write=False)
    assert counts["pending"] == 2


def test_two_concurrent_claimers_never_take_the_same_image(database_url: str) -> None:
    total = 60
    seed = Database(build_engine(database_url))
    add_images(seed, total)
    seed.dispose()
    claims: dict[str, list[str]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def claimer(name: str) -> None:
        own = Database(build_engine(database_url))  # like a second gateway process: its own engine and pool
        try:
            while True:
                image = own.run_sync(lambda session: ImageRepository(session).claim_next(name, 30))
                if image is None:
                    return
                claims[name].append(image.id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=claimer, args=(name,)) for name in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    everything = claims["a"] + claims["b"]
    assert len(everything) == total
    assert len(set(everything)) == total


def test_requeue_only_moves_failed_images(database: Database) -> None:
    image_id, _other_id = add_images(database, 2)
    assert not database.run_sync(lambda session: ImageRepository(session).requeue_failed(image_id))
    database.run_sync(lambda session: ImageRepository(session).claim_next("t", 30))
    down = FinalState(
        ImageStatus.FAILED, CaptionOutcome(CaptionStatus.UNAVAILABLE, error="down"), utc_now(), error="down"
    )
    assert database.run_sync(lambda session: ImageRepository(session).finish(image_id, "t", down))
    assert database.run_sync(lambda session: ImageRepository(session).count_unavailable_captions()) == 1
    assert database.run_sync(lambda session: ImageRepository(session).requeue_unavailable_captions()) == 1
    image = database.run_sync(lambda session: ImageRepository(session).get(image_id), write=False)
    assert image is not None
    assert image.status == ImageStatus.PENDING
    assert image.error is None


def test_statuses_read_back_as_their_enums_and_are_stored_as_their_values(database: Database) -> None:
    (image_id,) = add_images(database, 1)
    database.run_sync(lambda session: ImageRepository(session).claim_next("t", 30))
    down = FinalState(ImageStatus.FAILED, CaptionOutcome(CaptionStatus.UNAVAILABLE, error="down"), utc_now())
    database.run_sync(lambda session: ImageRepository(session).finish(image_id, "t", down))
    image = database.run_sync(lambda session: ImageRepository(session).get(image_id), write=False)
    assert image is not None
    assert (type(image.status), type(image.caption_status)) == (ImageStatus, CaptionStatus)
    assert (image.status, image.caption_status, image.recaption_status) == ("failed", "unavailable", None)
    events = database.run_sync(lambda session: events_after(session, 0, image_id), write=False)
    assert [type(event.caption_status) for event in events] == [CaptionStatus, CaptionStatus]
    stored = database.run_sync(
        lambda session: session.execute(text("SELECT status, caption_status FROM images")).one(), write=False
    )
    assert tuple(stored) == ("failed", "unavailable")
    assert {type(value) for value in stored} == {str}


def test_a_status_its_enum_does_not_know_is_refused_on_write(database: Database) -> None:
    (image_id,) = add_images(database, 1)
    with pytest.raises(StorageUnavailableError):
        database.run_sync(lambda session: session.execute(update(Image).values(status="paused")))
    image = database.run_sync(lambda session: ImageRepository(session).get(image_id), write=False)
    assert image is not None
    assert image.status is ImageStatus.PENDING


def test_stats_aggregate_in_the_database(database: Database) -> None:
    ids = add_images(database, 3)
    for number, image_id in enumerate(ids[:2]):
        database.run_sync(lambda session, image_id=image_id: ImageRepository(session).claim_next(image_id, 30))
        claimed = database.run_sync(lambda session, image_id=image_id: ImageRepository(session).get(image_id))
        assert claimed is not None
        assert claimed.started_at is not None
        done = FinalState(
            ImageStatus.COMPLETED,
            CaptionOutcome(CaptionStatus.COMPLETED, text="a cat", model=CaptionModel("m", "r1", "fp32")),
            claimed.started_at + timedelta(milliseconds=100 * (number + 1)),
        )
        database.run_sync(
            lambda session, image_id=image_id: ImageRepository(session).save_cpu_stages(
                image_id, image_id, CpuStagesResult(decode_ms=10.0)
            )
        )
        database.run_sync(
            lambda session, image_id=image_id, done=done: ImageRepository(session).finish(image_id, image_id, done)
        )
    database.run_sync(lambda session: ImageRepository(session).count_rejection(RejectionReason.TOO_LARGE))
    stats = database.run_sync(lambda session: ImageRepository(session).stats(), write=False)
    assert stats.total == 3
    assert stats.by_status == StatusCounts(pending=1, processing=0, completed=2, failed=0)
    assert stats.success_rate == 1.0
    assert stats.processing_ms.avg == 150.0
    assert stats.processing_ms.max == 200.0
    assert stats.stage_ms_avg.decode == 10.0
    assert stats.rejected.too_large == 1
    assert stats.captions.completed == 2
    assert stats.captions.pending == 1
