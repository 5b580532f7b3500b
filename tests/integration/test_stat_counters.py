"""The stats counters equal a full recount of the images table after any mix of state changes."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import func, select, text
from sqlmodel import Session, col

from gateway.persistence.aggregates import read_counters
from gateway.persistence.db import MIGRATIONS_DIR, Database, build_engine, upgrade_schema
from gateway.persistence.ledger import RowState, contribution
from gateway.persistence.models import CaptionModel, CaptionStatus, Image, ImageStatus, utc_now
from gateway.persistence.recaptions import RecaptionRepository
from gateway.persistence.repository import ImageRepository
from gateway.persistence.transitions import CaptionOutcome, CpuStagesResult, FinalState, RecaptionOutcome
from gateway.storage import new_image_id
from tests.repository_backends import BACKENDS, database_url_for


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url_for(request.param, tmp_path) as url:
        engine = build_engine(url)
        upgrade_schema(engine)
        engine.dispose()
        yield url


def new_image() -> Image:
    return Image(
        id=new_image_id(), filename="a.jpg", format="JPEG", mode="RGB", width=1, height=1, size_bytes=1, sha256="0" * 64
    )


MODELS = (CaptionModel("m", "r1", "fp32"), CaptionModel("m", "r2", "fp32"))


def final_state(started_at: datetime, rng: random.Random) -> FinalState:
    completed_at = started_at + timedelta(milliseconds=rng.uniform(0.5, 5000))
    if rng.random() < 0.6:
        caption = CaptionOutcome(
            CaptionStatus.COMPLETED, text="a cat", model=rng.choice(MODELS), duration_ms=rng.uniform(1, 900)
        )
        return FinalState(ImageStatus.COMPLETED, caption, completed_at)
    status = rng.choice([CaptionStatus.UNAVAILABLE, CaptionStatus.FAILED])
    return FinalState(ImageStatus.FAILED, CaptionOutcome(status, error="no"), completed_at, error="no")


def random_step(session: Session, rng: random.Random, name: str) -> None:
    """One state change picked at random, the way the gateway makes them."""
    repository = ImageRepository(session)
    # What this gateway saw; another may delete or take over a row before the step runs. Like the
    # worker, a step works from the claim it holds: the repository's token checks make it a no-op.
    ids = list(session.execute(select(col(Image.id), col(Image.claim_token), col(Image.started_at))).all())
    action = rng.choice(["add", "add", "claim", "claim", "expire", "stages", "finish", "finish", "release", "retry",
                         "requeue", "delete", "recaption_queue", "recaption_claim", "recaption_claim",
                         "recaption_finish", "recaption_finish", "recaption_release"])  # fmt: skip
    held = [(image_id, token, started) for image_id, token, started in ids if token and token.startswith(name)]
    if action.startswith("recaption_") and ids:
        recaption_step(RecaptionRepository(session), rng, name, action, ids)
        return
    if action == "add" or not ids:
        repository.add(new_image())
    elif action in ("claim", "expire"):  # "expire": a lease of 0 s, taken over by the next claim
        repository.claim_next(f"{name}{rng.random()}", 0 if action == "expire" else 60)
    elif action == "stages" and held:
        image_id, token, _started = rng.choice(held)
        stages = CpuStagesResult(decode_ms=rng.uniform(1, 50), metadata_ms=rng.uniform(0.1, 1), thumbnails_ms=9.0)
        repository.save_cpu_stages(image_id, token, stages)
    elif action == "finish" and held:
        image_id, token, started = rng.choice(held)
        assert started is not None  # set by the claim, in the same row version as its token
        repository.finish(image_id, token, final_state(started, rng))
    elif action == "release" and held:
        repository.release_claims([rng.choice(held)[1]])
    elif action == "retry":
        repository.requeue_failed(rng.choice(ids)[0])
    elif action == "requeue":
        repository.requeue_unavailable_captions()
    elif action == "delete":
        repository.delete(rng.choice(ids)[0])


def recaption_step(recaptions: RecaptionRepository, rng: random.Random, name: str, action: str, ids: list[Any]) -> None:
    """A re-captioning step: queue (one model's captions or all), claim, save a caption or a failure, release."""
    held = [(image_id, token) for image_id, token, _started in ids if token and token.startswith(f"R{name}")]
    if action == "recaption_queue":
        recaptions.queue_recaptions(rng.choice([None, *MODELS]))
    elif action == "recaption_claim":  # a lease of 0 s is taken over by the next claim
        recaptions.claim_recaptions(f"R{name}{rng.random()}", rng.choice([0, 60]))
    elif action == "recaption_finish" and held:
        image_id, token = rng.choice(held)
        made = RecaptionOutcome(text="a dog", model=rng.choice(MODELS))
        recaptions.finish_recaption(image_id, token, rng.choice([made, RecaptionOutcome(error="refused")]))
    elif action == "recaption_release" and held:
        recaptions.release_recaption_claims([rng.choice(held)[1]])


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
        assert asdict(ImageRepository(session).stats().by_status) == {s.value: by_status.get(s, 0) for s in ImageStatus}

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


def test_the_migration_seeds_the_counters_from_images_written_before_it(database_url: str) -> None:
    engine = build_engine(database_url)
    with engine.begin() as connection:  # back to the first revision, with rows written before counters existed
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
        now = utc_now()
        rows = [
            {"status": "completed", "caption_status": "completed", "processing_ms": 120.0, "decode_ms": 5.0},
            {"status": "completed", "caption_status": "completed", "processing_ms": 900.0, "decode_ms": 7.0},
            {"status": "failed", "caption_status": "unavailable", "processing_ms": 50.0, "decode_ms": None},
            {"status": "pending", "caption_status": "pending", "processing_ms": None, "decode_ms": None},
        ]
        for row in rows:
            connection.execute(
                text(
                    "INSERT INTO images (id, filename, status, created_at, request_id, format, mode, width, height,"
                    " size_bytes, sha256, metadata_done, caption_status, processing_ms, decode_ms, attempts)"
                    " VALUES (:id, 'a.jpg', :status, :now, '', 'JPEG', 'RGB', 1, 1, 1, :sha, false, :caption_status,"
                    " :processing_ms, :decode_ms, 0)"
                ),
                {**row, "id": new_image_id(), "now": now, "sha": "0" * 64},
            )
    upgrade_schema(engine)
    database = Database(engine)
    try:
        assert_counters_match_a_recount(database)
        stats = database.run_sync(lambda session: ImageRepository(session).stats(), write=False)
        assert stats.processing_ms.avg == 510.0
        assert stats.processing_ms.max == 900.0
        assert stats.stage_ms_avg.decode == 6.0
    finally:
        database.dispose()
