"""Blob storage: the ``BlobStore`` Protocol, its local and S3 backends, ids and the shared layout.

``python -m gateway.storage copy-to-bucket`` copies a local data dir into the bucket (see ``bucket_copy.py``).
"""

from __future__ import annotations

from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from gateway.storage.blobs import BlobInfo, BlobNotFoundError, BlobStore, BlobStream
from gateway.storage.layout import (
    CONTENT_TYPES,
    EXTENSIONS,
    IMAGE_ID_PATTERN,
    THUMBNAIL_SIZES,
    ThumbnailSize,
    image_keys,
    is_image_id,
    new_image_id,
    original_key,
    thumbnail_key,
)
from gateway.storage.local import LocalBlobStore, atomic_write
from gateway.storage.s3 import S3BlobStore


def build_blob_store(settings: GatewaySettings, metrics: GatewayMetrics | None = None) -> BlobStore:
    """The backend ``GATEWAY_STORAGE_BACKEND`` names; nothing is touched until ``start()``."""
    if settings.storage_backend == "s3":
        return S3BlobStore(settings, metrics)
    return LocalBlobStore(settings.data_dir)


__all__ = [
    "CONTENT_TYPES",
    "EXTENSIONS",
    "IMAGE_ID_PATTERN",
    "THUMBNAIL_SIZES",
    "BlobInfo",
    "BlobNotFoundError",
    "BlobStore",
    "BlobStream",
    "LocalBlobStore",
    "S3BlobStore",
    "ThumbnailSize",
    "atomic_write",
    "build_blob_store",
    "image_keys",
    "is_image_id",
    "new_image_id",
    "original_key",
    "thumbnail_key",
]
