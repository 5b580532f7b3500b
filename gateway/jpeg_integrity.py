"""Catch JPEGs that decode "successfully" but are not whole.

libjpeg treats a scan that stops early at a marker (typically data cut short and an EOI glued
on) as a warning, and Pillow does not surface warnings: the rest of a baseline image comes out
filled with mid-grey, and a progressive image silently loses its later scans. Two checks catch
what the decoder lets through:

- grey tail: a baseline decoder fills the missing MCUs with zero coefficients, which decode to
  exactly 128 in every channel, and the missing MCUs are always the last ones, at the bottom
  right. An image whose bottom row ends in a run of exactly mid-grey pixels (1/16 of the width
  or more) is therefore refused. Real photos never have such a run (noise alone breaks it); a
  synthetic image with a flat #808080 bottom-right corner is refused too, the price of never
  keeping a grey-filled photo. Only a cut inside the last few MCUs goes unseen.
- scan coverage: a progressive JPEG is whole only if its scans, read from the markers without
  decoding, bring every coefficient of every component down to its last bit (``Al = 0``). A cut
  inside the last scan (a final refinement bit of the lower part of the image) goes unseen.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

GREY_FILL_VALUE = 128
GREY_CHECKED_MODES = ("L", "RGB", "YCbCr")
# The grey run that ends the bottom row must be this long: at least 1/16 of the width, 2 px.
GREY_TAIL_WIDTH_DIVISOR = 16
MIN_GREY_TAIL_PX = 2
COEFFICIENTS = 64
SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
PROGRESSIVE_SOF = (0xC2, 0xC6, 0xCA, 0xCE)  # progressive DCT: Huffman, differential, arithmetic
STANDALONE_MARKERS = frozenset({0x01, SOI, EOI, *range(0xD0, 0xD8)})  # TEM, SOI, EOI, RST0-7


class IncompleteJpegError(ValueError):
    """The JPEG decoded, but some of its data is missing."""


def check_decoded_jpeg(image: Image.Image, path: Path) -> None:
    """Raise ``IncompleteJpegError`` when ``image`` (decoded from ``path``) is not the whole picture."""
    if image.info.get("progressive") or image.info.get("progression"):
        check_progressive_scans(path.read_bytes())
    else:
        check_no_grey_tail(image)


def check_no_grey_tail(image: Image.Image) -> None:
    if image.mode not in GREY_CHECKED_MODES or image.height < 2:
        return
    bottom_row = image.crop((0, image.height - 1, image.width, image.height)).tobytes()
    grey_bytes = len(bottom_row) - len(bottom_row.rstrip(bytes([GREY_FILL_VALUE])))
    grey_pixels = grey_bytes // len(image.getbands())
    if grey_pixels >= max(MIN_GREY_TAIL_PX, image.width // GREY_TAIL_WIDTH_DIVISOR):
        raise IncompleteJpegError("the JPEG data ends early: the decoder filled the end of the image with grey")


def check_progressive_scans(data: bytes) -> None:
    components: list[int] = []
    # the lowest successive-approximation bit each (component, coefficient) has reached
    lowest_bit: dict[tuple[int, int], int] = {}
    position = 2 if data[:2] == b"\xff\xd8" else 0
    while True:
        marker, position = _next_marker(data, position)
        if marker is None or marker == EOI:
            break
        if marker in STANDALONE_MARKERS:
            continue
        length = int.from_bytes(data[position : position + 2], "big")
        segment = data[position + 2 : position + length]
        position += length
        if marker in PROGRESSIVE_SOF and len(segment) >= 6:
            count = segment[5]
            components = [segment[6 + 3 * index] for index in range(count) if 6 + 3 * index < len(segment)]
        elif marker == SOS:
            _record_scan(segment, lowest_bit)
            position = _skip_entropy_data(data, position)
    missing = [
        (component, coefficient)
        for component in components
        for coefficient in range(COEFFICIENTS)
        if lowest_bit.get((component, coefficient)) != 0
    ]
    if missing or not components:
        raise IncompleteJpegError("the progressive JPEG data ends early: some of its scans are missing")


def _record_scan(segment: bytes, lowest_bit: dict[tuple[int, int], int]) -> None:
    count = segment[0] if segment else 0
    header_end = 1 + 2 * count
    if len(segment) < header_end + 3:
        return
    scan_components = [segment[1 + 2 * index] for index in range(count)]
    start, end, approximation = segment[header_end], segment[header_end + 1], segment[header_end + 2]
    low_bit = approximation & 0x0F
    for component in scan_components:
        for coefficient in range(start, min(end, COEFFICIENTS - 1) + 1):
            key = (component, coefficient)
            lowest_bit[key] = min(low_bit, lowest_bit.get(key, low_bit))


def _next_marker(data: bytes, position: int) -> tuple[int | None, int]:
    """The next marker code at or after ``position`` and the offset just past it."""
    while True:
        position = data.find(b"\xff", position)
        if position < 0 or position + 1 >= len(data):
            return None, len(data)
        code = data[position + 1]
        if code == 0xFF:  # fill byte
            position += 1
            continue
        if code == 0x00:  # stuffed byte inside entropy-coded data
            position += 2
            continue
        return code, position + 2


def _skip_entropy_data(data: bytes, position: int) -> int:
    """The offset of the first marker after a scan's entropy-coded data (RSTn belong to the scan)."""
    while True:
        position = data.find(b"\xff", position)
        if position < 0 or position + 1 >= len(data):
            return len(data)
        code = data[position + 1]
        if code == 0x00 or 0xD0 <= code <= 0xD7 or code == 0xFF:
            position += 1 if code == 0xFF else 2
            continue
        return position
