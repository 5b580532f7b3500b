"""The stats counters equal a full recount of the images table after any mix of state changes."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from gateway.aggregates import read_counters
from gateway.db import Database, build_engine, migrate
from gateway.ledger import RowState, contribution
from gateway.models import CaptionStatus, Image, ImageStatus
from gateway.repository import ImageRepository
from gateway.results import CaptionResult, CpuStagesResult, FinalState
from gateway.storage import new_image_id
from tests.repository_backends import BACKENDS, database_url_for


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url_for(request.param, tmp_path) as url:
        engine = build_engine(url)
        migrate(engine)
        engine.dispose()
        yield url


def new_image() -> Image:
    return Image(
        id=new_image_id(), filename="a.jpg", format="JPEG", mode="RGB", width=1, height=1, size_bytes=1, sha256="0" * 64
    )


def final_state(image: Image, rng: random.Random) -> FinalState:
    assert image.started_at is not None
    completed_at = image.started_at + timedelta(milliseconds=rng.uniform(0.5, 5000))
    if rng.random() < 0.6:
        caption = CaptionResult(CaptionStatus.COMPLETED, text="a cat", model="m", duration_ms=rng.uniform(1, 900))
        return FinalState(ImageStatus.COMPLETED, caption, completed_at)
    status = rng.choice([CaptionStatus.UNAVAILABLE, CaptionStatus.FAILED])
    return FinalState(ImageStatus.FAILED, CaptionResult(status, error="no"), completed_at, error="no")


def random_step(session: Session, rng: random.Random, name: str) -> None:
    """One state change picked at random, the way the gateway makes them."""
    repository = ImageRepository(session)
    ids = list(session.execute(select(col(Image.id), col(Image.claim_token))).all())
    action = rng.choice(["add", "add", "claim", "claim", "expire", "stages", "finish", "finish", "release", "retry",
                         "requeue", "delete"])  # fmt: skip
    held = [(image_id, token) for image_id, token in ids if token and token.startswith(name)]
    if action == "add" or not ids:
        repository.add(new_image())
    elif action in ("claim", "expire"):  # "expire": a lease of 0 s, taken over by the next claim
        repository.claim_next(f"{name}{rng.random()}", 0 if action == "expire" else 60)
    elif action == "stages" and held:
        image_id, token = rng.choice(held)
        stages = CpuStagesResult(decode_ms=rng.uniform(1, 50), metadata_ms=rng.uniform(0.1, 1), thumbnails_ms=9.0)
        repository.save_cpu_stages(image_id, token, stages)
    elif action == "finish" and held:
        image_id, token = rng.choice(held)
        image = repository.get(image_id)
        assert image is not None
        repository.finish(image_id, token, final_state(image, rng))
    elif action == "release" and held:
        repository.release_claims([rng.choice(held)[1]])
    elif action == "retry":
        repository.requeue_failed(rng.choice(ids)[0])
    elif action == "requeue":
        repository.requeue_unavailable_captions()
    elif action == "delete":
        repository.delete(rng.choice(ids)[0])


def recount(session: Session) -> dict[str, float]:
    totals: defaultdict[str, float] = defaultdict(float)
    for image in session.execute(select(Image)).scalars():
        for key, value in contribution(RowState.of(image)).items():
            totals[key] += value
    return dict(totals)


def assert_counters_match_a_recount(database: Database) -> None:
    def compare(session: Session) -> None:
        counters = {key: value for key, value in read_counters(session).items() if abs(value) > 1e-6}
        expected = recount(session)
        assert set(counters) == set(expected)
        for key, value in expected.items():
            assert counters[key] == pytest.approx(value, rel=1e-9, abs=1e-6), key
        by_status = dict(session.execute(select(col(Image.status), func.count()).group_by(col(Image.status))).all())
        assert ImageRepository(session).stats().by_status == {s.value: by_status.get(s.value, 0) for s in ImageStatus}

    database.run_sync(compare, write=False)


def test_counters_equal_a_recount_after_a_random_mix_of_state_changes(database_url: str) -> None:
    database = Database(build_engine(database_url))
    rng = random.Random(20261130)
    try:
        for _ in range(400):
            database.run_sync(lambda session: random_step(session, rng, "solo"))
        assert_counters_match_a_recount(database)
        stats = database.run_sync(lambda session: ImageRepository(session).stats(), write=False)
        assert stats.total > 0
    finally:
        database.dispose()


def test_counters_equal_a_recount_after_concurrent_gateways(database_url: str) -> None:
    errors: list[BaseException] = []

    def gateway(name: str, seed: int) -> None:
        own = Database(build_engine(database_url))  # its own engine and pool, like a second process
        rng = random.Random(seed)
        try:
            for _ in range(150):
                own.run_sync(lambda session: random_step(session, rng, name))
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=gateway, args=(f"g{n}-", n)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
    assert not errors
    database = Database(build_engine(database_url))
    try:
        assert_counters_match_a_recount(database)
    finally:
        database.dispose()
