"""Orphan sweeper: blobs whose image has no row once the grace period has passed are removed.

An upload marks its id before writing the original and commits the row after; DELETE marks before
removing the row. A crash between the two leaves a mark with no row: the sweeper deletes that id's
blobs and the mark. A mark with a row (the normal case) is just cleared. Marks younger than the
grace period are left alone, so an upload in flight on another gateway is never swept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog
from sqlmodel import Session, col, select

from gateway.errors import StorageUnavailableError
from gateway.persistence.db import Database
from gateway.persistence.models import Image
from gateway.storage.blobs import BlobStore
from servicekit.background import BackgroundLoops

log = structlog.get_logger("gateway.storage")
QUERY_BATCH = 500


def existing_image_ids(session: Session, image_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(image_ids), QUERY_BATCH):
        batch = list(image_ids[start : start + QUERY_BATCH])
        found.update(session.exec(select(Image.id).where(col(Image.id).in_(batch))).all())
    return found


class OrphanSweeper:
    """Every ``interval_s``: clear old marks, deleting the blobs of those with no row."""

    def __init__(self, store: BlobStore, database: Database, grace_s: float, interval_s: float) -> None:
        self.store = store
        self.database = database
        self.grace_s = grace_s
        self.interval_s = interval_s
        self._loops = BackgroundLoops("gateway.storage")

    def start(self) -> None:
        self._loops.start("orphan-sweeper", self._loop)

    async def stop(self) -> None:
        await self._loops.stop()

    async def sweep_once(self) -> list[str]:
        """One pass; returns the ids whose blobs were removed."""
        if self.store.readiness() is not None:
            return []
        marked = await self.store.marked_ids(self.grace_s)
        if not marked:
            return []
        with_rows = await self.database.read(lambda session: existing_image_ids(session, marked))
        orphans = [image_id for image_id in marked if image_id not in with_rows]
        for image_id in orphans:
            await self.store.delete_image(image_id)
        await self.store.clear_marks(marked)
        if orphans:
            log.info("orphans_swept", count=len(orphans), image_ids=orphans[:20])
        return orphans

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.sweep_once()
            except StorageUnavailableError as exc:
                log.warning("orphan_sweep_failed", error=exc.detail)
