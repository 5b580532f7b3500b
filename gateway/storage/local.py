"""``LocalBlobStore``: blobs as id-named files in the data dir, written by atomic renames."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.to_thread

from gateway.persistence.threads import run_to_completion
from gateway.storage.blobs import BlobInfo, BlobNotFoundError, BlobStream
from gateway.storage.layout import ORIGINALS, THUMBNAILS, ThumbnailSize, image_keys, original_key, thumbnail_key

CHUNK_BYTES = 1024 * 1024


class LocalBlobStore:
    """Owns the data dir layout (see ``gateway.storage.layout``) and ``uploads/`` for spools."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir.resolve()
        self.uploads_dir = self.root / "uploads"
        self._made_dirs: set[Path] = set()

    @property
    def description(self) -> str:
        return str(self.root)

    def upload_path(self, image_id: str) -> Path:
        return self.uploads_dir / f"{image_id}.part"

    def path_of(self, key: str) -> Path:
        return self.root / key

    async def start(self) -> None:
        await anyio.to_thread.run_sync(self.prepare)

    def prepare(self) -> None:
        """Create the layout and drop upload spools a crashed process left behind."""
        for directory in (self.root / ORIGINALS, self.root / THUMBNAILS, self.uploads_dir):
            directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.uploads_dir.iterdir():
            leftover.unlink(missing_ok=True)

    async def aclose(self) -> None:
        return None

    def readiness(self) -> str | None:
        return None

    async def put_original(self, image_id: str, image_format: str, spool: Path) -> None:
        """Move the spool into place: an atomic rename on one file system."""
        target = self.path_of(original_key(image_id, image_format))
        await run_to_completion(self._rename_into_place, spool, target)

    def _rename_into_place(self, spool: Path, target: Path) -> None:
        if target.parent not in self._made_dirs:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(target.parent)
        spool.replace(target)

    async def stat_original(self, image_id: str, image_format: str) -> BlobInfo | None:
        try:
            stat = await anyio.Path(self.path_of(original_key(image_id, image_format))).stat()
        except FileNotFoundError:
            return None
        return BlobInfo(size_bytes=stat.st_size, modified_at=datetime.fromtimestamp(stat.st_mtime, tz=UTC))

    async def open_original(self, image_id: str, image_format: str) -> BlobStream:
        path = self.path_of(original_key(image_id, image_format))
        try:
            handle = await anyio.open_file(path, "rb")
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"The original of image {image_id} is not stored.") from exc
        stat = await anyio.to_thread.run_sync(os.fstat, handle.wrapped.fileno())
        info = BlobInfo(size_bytes=stat.st_size, modified_at=datetime.fromtimestamp(stat.st_mtime, tz=UTC))
        return BlobStream(info=info, chunks=_file_chunks(handle))

    @asynccontextmanager
    async def original_file(self, image_id: str, image_format: str) -> AsyncIterator[Path]:
        path = self.path_of(original_key(image_id, image_format))
        if not await anyio.Path(path).exists():
            raise BlobNotFoundError(f"The original of image {image_id} is not stored.")
        yield path

    async def put_thumbnail(self, image_id: str, size: ThumbnailSize, data: bytes) -> None:
        """Atomic: written in the spool dir (swept at start), then renamed into place."""
        target = self.path_of(thumbnail_key(image_id, size))
        await run_to_completion(atomic_write, target, data, self.uploads_dir)

    async def read_thumbnail(self, image_id: str, size: ThumbnailSize) -> bytes:
        try:
            return await anyio.Path(self.path_of(thumbnail_key(image_id, size))).read_bytes()
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"The {size} thumbnail of image {image_id} is not stored.") from exc

    async def delete_image(self, image_id: str) -> None:
        await run_to_completion(self._delete_files, image_id)

    def _delete_files(self, image_id: str) -> None:
        for key in image_keys(image_id):
            self.path_of(key).unlink(missing_ok=True)
        self.upload_path(image_id).unlink(missing_ok=True)
        shutil.rmtree(self.path_of(thumbnail_key(image_id, "small")).parent, ignore_errors=True)

    # The data dir keeps no sweep marks: a rename and a row commit are today's behaviour here.
    async def mark_for_sweep(self, image_id: str) -> None:  # noqa: ARG002 (Protocol signature)
        return None

    async def marked_ids(self, older_than_s: float) -> list[str]:  # noqa: ARG002 (Protocol signature)
        return []

    async def clear_marks(self, image_ids: Sequence[str]) -> None:  # noqa: ARG002 (Protocol signature)
        return None


async def _file_chunks(handle: anyio.AsyncFile[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := await handle.read(CHUNK_BYTES):
            yield chunk
    finally:
        await handle.aclose()


def atomic_write(target: Path, data: bytes, spool_dir: Path) -> None:
    """Write ``data`` to a spool file and rename it over ``target``: readers never see half a file.

    ``spool_dir`` must be on the same file system; a crash leaves at most a spool file there.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = spool_dir / f"{uuid.uuid4().hex}.tmp"
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
