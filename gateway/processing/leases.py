"""What every claim loop does the same way: renew a held claim's lease, idle until woken, and give
back the claims still held when it stops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog
from sqlmodel import Session

from gateway.errors import StorageUnavailableError
from gateway.persistence.db import Database


async def keep_renewing(database: Database, renew: Callable[[Session], object], lease_s: float) -> None:
    """Run ``renew`` every third of ``lease_s`` until cancelled; a failed renewal waits for the next turn."""
    while True:
        await asyncio.sleep(lease_s / 3)
        with contextlib.suppress(StorageUnavailableError):
            await database.write(renew)


async def give_back(
    database: Database,
    held: set[str],
    release: Callable[[Session, list[str]], int],
    log: structlog.BoundLogger,
    what: str,
) -> None:
    """Release the claims whose tokens are in ``held`` (queued again, free for any gateway), logging
    ``<what>_released``; a storage failure leaves them to expire and logs ``<what>_not_released``."""
    tokens = sorted(held)
    if not tokens:
        return
    released_event, not_released_event = what + "_released", what + "_not_released"  # structlog event names
    try:
        released = await database.write(lambda session: release(session, tokens))
    except StorageUnavailableError as exc:
        log.warning(not_released_event, count=len(tokens), error=exc.detail)
        return
    held.difference_update(tokens)
    log.info(released_event, count=released)


async def idle(wakeup: asyncio.Event, poll_interval_s: float) -> None:
    """Wait for ``wakeup`` or the poll interval, whichever comes first."""
    # asyncio.timeout, not asyncio.wait_for: on Python 3.11 wait_for swallows a cancellation that
    # lands together with the wakeup, and the loop would outlive the gateway's stop.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(poll_interval_s):
            await wakeup.wait()
