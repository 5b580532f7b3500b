"""Bytes to an upright RGB image: what is refused, and how it is named."""

from __future__ import annotations

import pytest

from inference.errors import ImageTooLargeError, UnsupportedImageError
from inference.preprocess import decode_image
from tests.support import make_image_bytes


@pytest.mark.parametrize(
    ("data", "named"),
    [(b"GIF89a" + bytes(20), "GIF"), (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "WebP"), (b"<svg xmlns=", "SVG/XML")],
)
def test_other_formats_are_refused_by_name(data: bytes, named: str) -> None:
    with pytest.raises(UnsupportedImageError, match=f"looks like {named}; only JPEG and PNG"):
        decode_image(data, 1_000_000)


def test_pixels_over_the_limit_are_refused_before_decoding() -> None:
    with pytest.raises(ImageTooLargeError, match="600 pixels, over 599"):
        decode_image(make_image_bytes((30, 20)), 599)
    assert decode_image(make_image_bytes((30, 20)), 600).size == (30, 20)
