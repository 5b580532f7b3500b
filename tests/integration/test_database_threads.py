"""A cancelled database call ends only when its thread is done with the connection.

Every background loop of the gateway is stopped with ``task.cancel()``. If the awaiting task ended
while its thread still ran the transaction, a stop could give claims back before a claim in flight
committed, and the engine could be disposed under a checked-out connection (which then leaks: it
is returned to the old pool, and psycopg warns when it is collected).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio.to_thread
import pytest
from sqlalchemy import text
from sqlmodel import Session

from gateway.persistence.db import Database
from gateway.persistence.models import RejectionCount
from tests.repository_backends import BACKENDS, migrated_database


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with migrated_database(request.param, tmp_path) as db:
        yield db


class SlowWrite:
    """A write that signals when its thread started, then takes ``duration_s`` before committing a row."""

    def __init__(self, duration_s: float) -> None:
        self.duration_s = duration_s
        self.started = threading.Event()
        self.finished = threading.Event()

    def __call__(self, session: Session) -> None:
        self.started.set()
        time.sleep(self.duration_s)
        session.add(RejectionCount(reason="slow_write", count=1))
        self.finished.set()


def counted(database: Database) -> int | None:
    with database.engine.connect() as connection:
        return connection.execute(text("SELECT count FROM rejection_counts WHERE reason = 'slow_write'")).scalar()


@pytest.mark.parametrize("cancellations", [1, 3])
async def test_a_cancelled_write_returns_after_its_transaction_committed_and_its_connection_is_back(
    database: Database, cancellations: int
) -> None:
    work = SlowWrite(duration_s=0.4)
    call = asyncio.create_task(database.write(work))
    await anyio.to_thread.run_sync(work.started.wait)
    for _ in range(cancellations):
        call.cancel()
        await asyncio.sleep(0.02)
    with pytest.raises(asyncio.CancelledError):
        await call
    assert work.finished.is_set(), "the cancellation surfaced while the thread still ran the transaction"
    assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert counted(database) == 1  # the thread's work is not lost: it committed


async def test_a_write_that_fails_after_a_cancellation_still_raises_the_cancellation(database: Database) -> None:
    started = threading.Event()

    def failing(session: Session) -> None:
        started.set()
        time.sleep(0.2)
        raise ValueError("the work failed")

    call = asyncio.create_task(database.write(failing))
    await anyio.to_thread.run_sync(started.wait)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_an_uncancelled_write_returns_its_result_and_raises_its_errors(database: Database) -> None:
    assert await database.read(lambda session: session.execute(text("SELECT 41 + 1")).scalar_one()) == 42

    def failing(session: Session) -> None:
        raise ValueError("the work failed")

    with pytest.raises(ValueError, match="the work failed"):
        await database.write(failing)
