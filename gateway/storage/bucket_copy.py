"""Copy a local data dir's originals and thumbnails into the S3 bucket, resumable and verified by sha256.

``python -m gateway.storage copy-to-bucket`` (alias ``migrate``, its first name) runs it.

Each file goes to the key of its own relative path (the layout is shared). An object already
present with the same size and sha256 is skipped, so a run that was interrupted is simply run
again; one that differs is uploaded again. Every upload is read back and its sha256 compared.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread

from gateway.errors import StorageUnavailableError
from gateway.storage.blobs import BlobNotFoundError
from gateway.storage.layout import BLOB_KEY_PATTERN, content_type_of_key
from gateway.storage.s3 import S3BlobStore


@dataclass
class CopyReport:
    files: int = 0
    uploaded: int = 0
    replaced: int = 0
    skipped: int = 0
    uploaded_bytes: int = 0
    ignored: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.mismatched or self.failed)

    def summary(self) -> str:
        return (
            f"{self.files} files: {self.uploaded} uploaded, {self.replaced} replaced, {self.skipped} already there "
            f"({self.uploaded_bytes} bytes sent); {len(self.mismatched)} sha256 mismatches, "
            f"{len(self.missing)} missing, {len(self.failed)} failed, "
            f"{len(self.ignored)} files outside the layout ignored"
        )


def blob_files(data_dir: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """(key, path) of every originals/thumbnails file of the layout, and the other files found there."""
    found, ignored = [], []
    for top in ("originals", "thumbnails"):
        for path in sorted((data_dir / top).rglob("*")):
            if not path.is_file():
                continue
            key = path.relative_to(data_dir).as_posix()
            if BLOB_KEY_PATTERN.fullmatch(key):
                found.append((key, path))
            else:
                ignored.append(key)
    return found, ignored


def local_sha256_and_size(path: Path) -> tuple[str, int]:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest(), path.stat().st_size


async def remote_sha256(store: S3BlobStore, key: str) -> str | None:
    try:
        stream = await store.open_key(key, missing=key)
    except BlobNotFoundError:
        return None
    digest = hashlib.sha256()
    async for chunk in stream.chunks:
        digest.update(chunk)
    return digest.hexdigest()


class BucketCopy:
    """One run over one data dir; ``verify_only`` uploads nothing and reports what differs."""

    def __init__(self, store: S3BlobStore, data_dir: Path, *, verify_only: bool = False, concurrency: int = 4) -> None:
        self.store = store
        self.data_dir = data_dir
        self.verify_only = verify_only
        self.limiter = anyio.CapacityLimiter(concurrency)
        self.report = CopyReport()

    async def run(self) -> CopyReport:
        files, self.report.ignored = await anyio.to_thread.run_sync(blob_files, self.data_dir)
        self.report.files = len(files)
        async with anyio.create_task_group() as group:
            for key, path in files:
                group.start_soon(self._one, key, path)
        return self.report

    async def _one(self, key: str, path: Path) -> None:
        async with self.limiter:
            try:
                await self._copy(key, path)
            except StorageUnavailableError:
                self.report.failed.append(key)

    async def _copy(self, key: str, path: Path) -> None:
        local_sha256, size_bytes = await anyio.to_thread.run_sync(local_sha256_and_size, path)
        present = await self.store.head(key)
        stored_sha256 = await remote_sha256(self.store, key) if present and present.size_bytes == size_bytes else None
        if stored_sha256 == local_sha256:
            self.report.skipped += 1
            return
        if self.verify_only:
            (self.report.mismatched if present else self.report.missing).append(key)
            return
        await self.store.put_file(key, path, content_type_of_key(key))
        if await remote_sha256(self.store, key) != local_sha256:
            self.report.mismatched.append(key)
            return
        self.report.uploaded_bytes += size_bytes
        if present:
            self.report.replaced += 1
        else:
            self.report.uploaded += 1
