"""Id-named files on disk: originals, thumbnails, upload spools; atomic writes and deletes."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Literal

ThumbnailSize = Literal["small", "medium"]
IMAGE_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png"}
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}


def new_image_id() -> str:
    return uuid.uuid4().hex


def is_image_id(value: str) -> bool:
    return IMAGE_ID_PATTERN.fullmatch(value) is not None


class ImageStorage:
    """Owns the data dir layout. Nothing on disk is ever named after a client's file name.

    ``originals/<id[:2]>/<id>.<ext>``, ``thumbnails/<id[:2]>/<id>/<size>.jpg``, ``uploads/<id>.part``.
    """

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir.resolve()
        self.originals_dir = self.root / "originals"
        self.thumbnails_dir = self.root / "thumbnails"
        self.uploads_dir = self.root / "uploads"
        self._made_dirs: set[Path] = set()

    def prepare(self) -> None:
        """Create the layout and drop upload spools a crashed process left behind."""
        for directory in (self.originals_dir, self.thumbnails_dir, self.uploads_dir):
            directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.uploads_dir.iterdir():
            leftover.unlink(missing_ok=True)

    def upload_path(self, image_id: str) -> Path:
        return self.uploads_dir / f"{image_id}.part"

    def original_path(self, image_id: str, image_format: str) -> Path:
        return self.originals_dir / image_id[:2] / f"{image_id}{EXTENSIONS[image_format]}"

    def thumbnail_dir(self, image_id: str) -> Path:
        return self.thumbnails_dir / image_id[:2] / image_id

    def thumbnail_path(self, image_id: str, size: ThumbnailSize) -> Path:
        return self.thumbnail_dir(image_id) / f"{size}.jpg"

    def commit_upload(self, image_id: str, image_format: str) -> Path:
        """Move a fully received upload into place (atomic rename on one file system)."""
        target = self.original_path(image_id, image_format)
        if target.parent not in self._made_dirs:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(target.parent)
        self.upload_path(image_id).replace(target)
        return target

    def write_thumbnail(self, image_id: str, size: ThumbnailSize, data: bytes) -> Path:
        """Atomic: written in the spool dir (swept at start), then renamed into place."""
        target = self.thumbnail_path(image_id, size)
        atomic_write(target, data, spool_dir=self.uploads_dir)
        return target

    def delete_image(self, image_id: str) -> None:
        """Remove every file of one image; missing files are fine."""
        for image_format in EXTENSIONS:
            self.original_path(image_id, image_format).unlink(missing_ok=True)
        self.upload_path(image_id).unlink(missing_ok=True)
        shutil.rmtree(self.thumbnail_dir(image_id), ignore_errors=True)


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
