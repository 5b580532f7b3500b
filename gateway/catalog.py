"""The typed reads and simple writes that request handlers make, each in its own database thread.

Handlers (``api/``, ``web/``) call these instead of building ``ImageRepository`` in a lambda, so a
query is written once and its type is visible at the call site.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import ImageNotFoundError
from gateway.persistence.aggregates import StatsSnapshot
from gateway.persistence.db import Database
from gateway.persistence.models import CaptionModel, Image, ImageStatus
from gateway.persistence.paging import Page
from gateway.persistence.recaptions import RecaptionRepository
from gateway.persistence.repository import ImageRepository
from gateway.persistence.search import CaptionQuery
from gateway.storage import is_image_id


@dataclass(frozen=True)
class ImageCatalog:
    """Images as handlers see them: one by id, a page of them, and the counters over all of them."""

    database: Database

    async def load(self, image_id: str) -> Image:
        """The image row, or ``ImageNotFoundError`` for an unknown or malformed id."""
        if not is_image_id(image_id):
            raise ImageNotFoundError(f"'{image_id[:64]}' is not an image id.")
        image = await self.database.read(lambda session: ImageRepository(session).get(image_id))
        if image is None:
            raise ImageNotFoundError(f"No image with id {image_id}.")
        return image

    async def page(
        self, status: ImageStatus | None, limit: int, cursor: str | None, search: CaptionQuery | None = None
    ) -> Page:
        """Newest first, ``limit`` images after ``cursor`` (``None`` for the first page); with ``search``, only
        those whose caption holds every word."""
        return await self.database.read(
            lambda session: ImageRepository(session).list_page(status, limit, cursor, search)
        )

    async def matches(self, image_id: str, search: CaptionQuery) -> bool:
        """True when the image's caption holds every word of ``search``."""
        return await self.database.read(lambda session: ImageRepository(session).matches(image_id, search))

    async def stats(self) -> StatsSnapshot:
        """Every aggregate of ``GET /api/stats`` but uptime, in constant time."""
        return await self.database.read(lambda session: ImageRepository(session).stats())

    async def count_by_status(self) -> dict[str, int]:
        """Images by status, from the counters."""
        return await self.database.read(lambda session: ImageRepository(session).count_by_status())

    async def requeue_failed(self, image_id: str) -> bool:
        """``failed`` -> ``pending``; False when the image is in another status."""
        return await self.database.write(lambda session: ImageRepository(session).requeue_failed(image_id))

    async def queue_recaptions(self, current: CaptionModel | None) -> int:
        """Queue the captions not made by ``current`` (every caption when ``None``); how many were queued."""
        return await self.database.write(lambda session: RecaptionRepository(session).queue_recaptions(current))
