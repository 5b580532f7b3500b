"""Wakes SSE readers when new events may be committed, and prunes events past their retention.

On PostgreSQL one ``LISTEN gateway_events`` connection per gateway (psycopg, async) wakes every
reader of this process as soon as any gateway commits an event; readers also poll every
``events_poll_interval_s`` in case that connection is down. On SQLite readers just poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import psycopg
import structlog

from gateway.errors import StorageUnavailableError
from gateway.persistence.db import Database
from gateway.persistence.event_log import NOTIFY_CHANNEL, prune_events
from gateway.persistence.models import utc_now
from gateway.settings import GatewaySettings
from servicekit.background import BackgroundLoops

log = structlog.get_logger("gateway.events")
LISTEN_RETRY_S = 5.0


class EventFeed:
    """Wake-ups for SSE streams of this process, and the retention sweeper."""

    def __init__(self, settings: GatewaySettings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self._woken = asyncio.Event()
        self._loops = BackgroundLoops("gateway.events")

    async def start(self) -> None:
        self._loops.start("gateway-events-pruner", self._prune_loop)
        if self.database.engine.dialect.name == "postgresql":
            self._loops.start("gateway-events-listener", self._listen_loop)

    async def stop(self) -> None:
        await self._loops.stop()

    def next_wakeup(self) -> asyncio.Event:
        """What the next ``wake`` sets: take it before reading events, wait on it after.

        A NOTIFY that lands between the read and the wait then still ends the wait.
        """
        return self._woken

    async def wait(self, woken: asyncio.Event, timeout_s: float) -> None:
        """Return once ``woken`` (from ``next_wakeup``) is set, or after ``timeout_s`` at the latest."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(timeout_s, self.settings.events_poll_interval_s)):
                await woken.wait()

    def wake(self) -> None:
        self._woken.set()
        self._woken = asyncio.Event()

    async def prune_once(self) -> int:
        older_than = utc_now() - timedelta(hours=self.settings.events_retention_h)
        pruned = await self.database.write(lambda session: prune_events(session, older_than))
        if pruned:
            log.info("events_pruned", count=pruned, older_than=older_than.isoformat())
        return pruned

    async def _prune_loop(self) -> None:
        while True:
            try:
                await self.prune_once()
            except StorageUnavailableError as exc:
                log.warning("events_prune_failed", error=exc.detail)
            await asyncio.sleep(self.settings.events_prune_interval_s)

    async def _listen_loop(self) -> None:
        conninfo = self.database.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                connection = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
                try:
                    await connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    log.info("events_listening", channel=NOTIFY_CHANNEL)
                    async for _notification in connection.notifies():
                        self.wake()
                finally:
                    # Not ``async with``: its exit awaits a rollback first, and a second cancellation
                    # landing there would skip the close. close() finishes without suspending.
                    await connection.close()
            except (psycopg.Error, OSError) as exc:
                log.warning("events_listen_failed", error=str(exc).splitlines()[0][:300], retry_s=LISTEN_RETRY_S)
            await asyncio.sleep(LISTEN_RETRY_S)
