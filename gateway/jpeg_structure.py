"""JPEG marker structure read without decoding: scan coverage and stray bytes between segments.

Two things the decoder cannot tell us:

- a JPEG with several scans (progressive, or one scan per component) cut exactly between two
  scans, with an end marker appended, decodes without any warning: it is a legal but coarser or
  colourless picture. ``missing_scans`` finds it from the scan headers: every component must be
  coded, and in a progressive file every coefficient refined down to its last bit (``Al = 0``).
- stray bytes between header segments (a camera quirk; libjpeg warns "extraneous bytes before
  marker", browsers show the file) are told apart from data that ends early by removing them
  (``without_stray_bytes``) and decoding again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

COEFFICIENTS = 64
SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
PROGRESSIVE_SOF = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
FRAME_SOF = frozenset({*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC), *range(0xCD, 0xD0)})
STANDALONE_MARKERS = frozenset({0x01, SOI, *range(0xD0, 0xD8)})  # TEM, SOI, RST0-7
# The end of a scan's entropy-coded data: a marker that is neither a stuffed 0x00 nor RSTn.
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


class _Frame:
    """What the scans of one image must cover, and what they did cover."""

    def __init__(self) -> None:
        self.components: list[int] = []
        self.progressive = False
        # the lowest successive-approximation bit each (component, coefficient) has reached
        self.lowest_bit: dict[tuple[int, int], int] = {}

    def record_scan(self, header: bytes) -> None:
        count = header[0] if header else 0
        end = 1 + 2 * count
        if len(header) < end + 3:
            return
        start, stop, approximation = header[end], header[end + 1], header[end + 2]
        if not self.progressive:  # a sequential scan codes all 64 coefficients at full precision
            start, stop, approximation = 0, COEFFICIENTS - 1, 0
        for component in (header[1 + 2 * index] for index in range(count)):
            for coefficient in range(start, min(stop, COEFFICIENTS - 1) + 1):
                key = (component, coefficient)
                self.lowest_bit[key] = min(approximation & 0x0F, self.lowest_bit.get(key, 0x0F))

    def missing(self) -> bool:
        return not self.components or any(
            self.lowest_bit.get((component, coefficient)) != 0
            for component in self.components
            for coefficient in range(COEFFICIENTS)
        )


def missing_scans(data: bytes) -> bool:
    """True when the scans up to the first end marker do not code the whole image."""
    frame = _Frame()
    for marker, segment, _start, _end in _segments(data):
        if marker in FRAME_SOF and len(segment) >= 6:
            frame.progressive = marker in PROGRESSIVE_SOF
            frame.components = [segment[6 + 3 * index] for index in range(segment[5]) if 6 + 3 * index < len(segment)]
        elif marker == SOS:
            frame.record_scan(segment)
            if not frame.missing():  # e.g. the one interleaved scan of a baseline file
                return False
    return frame.missing()


def without_stray_bytes(data: bytes) -> bytes:
    """``data`` without the bytes found between segments where a marker should start."""
    pieces: list[bytes] = []
    previous: tuple[int, int] | None = None  # (marker, end) of the segment before
    for marker, _segment, start, end in _segments(data):
        if previous is not None and previous[0] == SOS:
            pieces.append(data[previous[1] : start])  # a scan's entropy-coded data
        pieces.append(data[start:end])
        previous = (marker, end)
    if previous is None:
        return data
    return b"".join(pieces) + data[previous[1] :]


def _segments(data: bytes) -> Iterator[tuple[int, bytes, int, int]]:
    """(marker, payload, start, end) of each segment up to the first EOI; a scan's entropy data follows its end."""
    position = 0
    while True:
        start = data.find(b"\xff", position)
        while 0 <= start < len(data) - 1 and data[start + 1] == 0xFF:  # fill bytes before a marker
            start += 1
        if start < 0 or start + 1 >= len(data):
            return
        marker = data[start + 1]
        if marker == EOI:
            yield marker, b"", start, start + 2
            return
        if marker in STANDALONE_MARKERS or marker == 0x00:
            yield marker, b"", start, start + 2
            position = start + 2
            continue
        end = start + 2 + int.from_bytes(data[start + 2 : start + 4], "big")
        yield marker, data[start + 4 : end], start, end
        position = end
        if marker == SOS:  # searched only when the caller asks for what follows the scan
            scan_end = _SCAN_END.search(data, end)
            position = scan_end.start() if scan_end else len(data)
