"""Keyset paging over images, newest first: opaque cursors of (created_at, id).

A cursor is 46 lowercase hex digits: ``created_at`` in microseconds since the Unix epoch (14
digits, enough until the year 4253) followed by the image id (32). Every string of
that shape is a position in the list, so the published pattern is exactly what the server
accepts, and anything else is malformed (400).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.errors import InvalidQueryError
from gateway.persistence.models import Image

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
TIME_DIGITS = 14
ID_DIGITS = 32
CURSOR_PATTERN = f"^(?:[0-9a-f]{{{TIME_DIGITS + ID_DIGITS}}})?$"
"""A cursor, or empty for the first page; what ``decode_cursor`` accepts, declared in the schema."""
_CURSOR = re.compile(f"[0-9a-f]{{{TIME_DIGITS}}}[0-9a-f]{{{ID_DIGITS}}}")
MALFORMED = "The cursor is malformed; pass back a next_cursor value unchanged."


@dataclass(frozen=True)
class Page:
    items: list[Image]
    next_cursor: str | None


def encode_cursor(image: Image) -> str:
    microseconds = (image.created_at - EPOCH) // ONE_MICROSECOND
    return f"{microseconds:0{TIME_DIGITS}x}{image.id}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of ``encode_cursor``; anything else is a 400."""
    if _CURSOR.fullmatch(cursor) is None:
        raise InvalidQueryError(MALFORMED)
    return EPOCH + int(cursor[:TIME_DIGITS], 16) * ONE_MICROSECOND, cursor[TIME_DIGITS:]
