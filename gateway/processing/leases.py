"""What every claim loop does the same way: renew a held claim's lease, and idle until woken."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from sqlmodel import Session

from gateway.errors import StorageUnavailableError
from gateway.persistence.db import Database


async def keep_renewing(database: Database, renew: Callable[[Session], object], lease_s: float) -> None:
    """Run ``renew`` every third of ``lease_s`` until cancelled; a failed renewal waits for the next turn."""
    while True:
        await asyncio.sleep(lease_s / 3)
        with contextlib.suppress(StorageUnavailableError):
            await database.write(renew)


async def idle(wakeup: asyncio.Event, poll_interval_s: float) -> None:
    """Wait for ``wakeup`` or the poll interval, whichever comes first."""
    # asyncio.timeout, not asyncio.wait_for: on Python 3.11 wait_for swallows a cancellation that
    # lands together with the wakeup, and the loop would outlive the gateway's stop.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(poll_interval_s):
            await wakeup.wait()
