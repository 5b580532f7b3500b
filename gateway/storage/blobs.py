"""The ``BlobStore`` Protocol: where originals and thumbnails live, behind one async API.

Two backends implement it: ``LocalBlobStore`` (the data dir) and ``S3BlobStore`` (a bucket).
Upload spools are local files in both: a body is received and judged on disk before it is stored.
Errors: a missing blob raises ``BlobNotFoundError`` (a ``FileNotFoundError``); a store that cannot
be used raises ``StorageUnavailableError`` (503), as the database does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from gateway.storage.layout import ThumbnailSize


class BlobNotFoundError(FileNotFoundError):
    """The blob asked for is not stored (never written, or deleted)."""


@dataclass(frozen=True)
class BlobInfo:
    size_bytes: int
    modified_at: datetime


@dataclass(frozen=True)
class BlobStream:
    """An open blob: its size and time, and its bytes in chunks (read them once, to the end)."""

    info: BlobInfo
    chunks: AsyncIterator[bytes]


class BlobStore(Protocol):
    """Originals and thumbnails of images, by image id."""

    @property
    def description(self) -> str:
        """Where blobs live, for logs: a directory, or ``s3 <endpoint>/<bucket>/<prefix>``."""
        ...

    def upload_path(self, image_id: str) -> Path:
        """The local spool file an incoming upload is written to before ``put_original``."""
        ...

    async def start(self) -> None:
        """Prepare the spool dir (leftover spools are dropped) and connect; never raises for a bad store.

        A store that cannot be used yet is reported by ``readiness()`` and retried in the background.
        """
        ...

    async def aclose(self) -> None: ...

    def readiness(self) -> str | None:
        """``None`` when the store is usable, else one sentence saying why not."""
        ...

    async def put_original(self, image_id: str, image_format: str, spool: Path) -> None:
        """Store a fully received upload as the original (durable when this returns).

        Call it before the row is committed. The spool may be consumed (moved) or left for the caller.
        """
        ...

    async def open_original(self, image_id: str, image_format: str) -> BlobStream: ...

    async def stat_original(self, image_id: str, image_format: str) -> BlobInfo | None: ...

    def original_file(self, image_id: str, image_format: str) -> AbstractAsyncContextManager[Path]:
        """A local file holding the original while the context is open (a download spool for S3)."""
        ...

    async def put_thumbnail(self, image_id: str, size: ThumbnailSize, data: bytes) -> None: ...

    async def read_thumbnail(self, image_id: str, size: ThumbnailSize) -> bytes: ...

    async def delete_image(self, image_id: str) -> None:
        """Remove every blob of one image; missing blobs are fine."""
        ...

    async def mark_for_sweep(self, image_id: str) -> None:
        """Record that this image's blobs must go unless its row exists once the grace period has passed.

        ``put_original`` marks by itself; ``DELETE`` marks before deleting the row, so a crash at any
        point leaves the sweeper a mark to act on. The local backend keeps no marks.
        """
        ...

    async def marked_ids(self, older_than_s: float) -> list[str]:
        """Ids marked for longer than ``older_than_s`` seconds (by the store's own clock)."""
        ...

    async def clear_marks(self, image_ids: Sequence[str]) -> None: ...
