"""Keyset paging over images, newest first: opaque cursors of (created_at, id)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from gateway.errors import InvalidQueryError
from gateway.persistence.models import Image


@dataclass(frozen=True)
class Page:
    items: list[Image]
    next_cursor: str | None


def encode_cursor(image: Image) -> str:
    raw = f"{image.created_at.isoformat()}|{image.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of ``encode_cursor``; anything else is a 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at_text, image_id = raw.split("|", 1)
        created_at = datetime.fromisoformat(created_at_text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidQueryError("The cursor is malformed; pass back a next_cursor value unchanged.") from exc
    if created_at.tzinfo is None or not image_id:
        raise InvalidQueryError("The cursor is malformed; pass back a next_cursor value unchanged.")
    return created_at, image_id
