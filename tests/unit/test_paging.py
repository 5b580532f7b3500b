"""Cursors: every string the published pattern admits is a position in the list, and they round-trip."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import InvalidQueryError
from gateway.persistence.models import Image
from gateway.persistence.paging import CURSOR_PATTERN, decode_cursor, encode_cursor

CURSORS = st.from_regex(CURSOR_PATTERN, fullmatch=True).filter(bool)


@given(CURSORS)
def test_every_cursor_the_pattern_admits_decodes(cursor: str) -> None:
    created_at, image_id = decode_cursor(cursor)
    assert created_at.tzinfo is not None
    assert re.fullmatch(r"[0-9a-f]{32}", image_id)


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(4000, 1, 1)), st.uuids())  # noqa: DTZ001
def test_a_cursor_round_trips_and_matches_the_pattern(created: datetime, image_uuid: uuid.UUID) -> None:
    image = Image(id=image_uuid.hex, filename="a.jpg", created_at=created.replace(tzinfo=UTC))
    cursor = encode_cursor(image)
    assert re.fullmatch(CURSOR_PATTERN, cursor)
    assert decode_cursor(cursor) == (image.created_at, image.id)


@pytest.mark.parametrize("cursor", ["==", "j", "bm9wZQ", "0" * 45, "0" * 47, "G" * 46, "0" * 45 + "\n"])
def test_anything_else_is_malformed(cursor: str) -> None:
    assert re.fullmatch(CURSOR_PATTERN, cursor) is None
    with pytest.raises(InvalidQueryError):
        decode_cursor(cursor)


def test_the_newest_possible_cursor_is_a_time() -> None:
    assert decode_cursor("f" * 46)[0] > datetime.now(UTC) + timedelta(days=365 * 2000)
