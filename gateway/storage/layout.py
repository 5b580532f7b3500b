"""Image ids and the id-named layout every backend shares: a data dir and a bucket look the same.

``originals/<id[:2]>/<id>.<ext>``, ``thumbnails/<id[:2]>/<id>/<size>.jpg``; nothing is ever named
after a client's file name. The keys are relative: a data dir joins them to its root, a bucket
to its prefix, so ``python -m gateway.storage copy-to-bucket`` copies a file to the key of its own path.
"""

from __future__ import annotations

import re
import uuid
from typing import Literal

ThumbnailSize = Literal["small", "medium"]
THUMBNAIL_SIZES: tuple[ThumbnailSize, ...] = ("small", "medium")
IMAGE_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png"}
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}
THUMBNAIL_CONTENT_TYPE = "image/jpeg"
ORIGINALS = "originals"
THUMBNAILS = "thumbnails"
# A key the layout owns: what `copy-to-bucket` copies, and nothing else found in a data dir.
BLOB_KEY_PATTERN = re.compile(
    r"^(?:originals/[0-9a-f]{2}/[0-9a-f]{32}\.(?:jpg|png)|thumbnails/[0-9a-f]{2}/[0-9a-f]{32}/(?:small|medium)\.jpg)$"
)


def new_image_id() -> str:
    return uuid.uuid4().hex


def is_image_id(value: str) -> bool:
    return IMAGE_ID_PATTERN.fullmatch(value) is not None


def original_key(image_id: str, image_format: str) -> str:
    return f"{ORIGINALS}/{image_id[:2]}/{image_id}{EXTENSIONS[image_format]}"


def thumbnail_key(image_id: str, size: ThumbnailSize) -> str:
    return f"{THUMBNAILS}/{image_id[:2]}/{image_id}/{size}.jpg"


def image_keys(image_id: str) -> list[str]:
    """Every key an image can own, whatever its format: what deleting it removes."""
    originals = [original_key(image_id, image_format) for image_format in EXTENSIONS]
    return originals + [thumbnail_key(image_id, size) for size in THUMBNAIL_SIZES]


def content_type_of_key(key: str) -> str:
    return CONTENT_TYPES["PNG"] if key.endswith(EXTENSIONS["PNG"]) else CONTENT_TYPES["JPEG"]
