"""JPEG marker structure read without decoding: scan coverage, and the byte-level quirks libjpeg warns about.

Two things the decoder cannot tell us:

- a JPEG with several scans (progressive, or one scan per component) cut exactly between two
  scans, with an end marker appended, decodes without any warning: it is a legal but coarser or
  colourless picture. ``missing_scans`` finds it from the scan headers: every component must be
  coded, and in a progressive file every coefficient refined down to its last bit (``Al = 0``).
- a harmless quirk (libjpeg warns, reads the file all the same, browsers show it) is told apart
  from data that ends early by patching it away in a copy and decoding that strictly again. Each
  patch writes what libjpeg assumes anyway, so the pixels are the same: stray bytes between header
  segments are removed (``without_stray_bytes``); stray bytes that follow a scan's entropy-coded
  data are located among ``stray_byte_positions`` (none in a file with restart intervals) and
  removed; an unknown JFIF revision becomes 1.02 (``with_jfif_revision_1``); an unknown Adobe
  colour transform becomes libjpeg's guess, YCbCr for 3 components and YCCK for 4
  (``with_adobe_transform_guessed``); and the scan headers of a sequential frame get the only
  legal Ss=0, Se=63, Ah=Al=0 (``with_sequential_scan_parameters``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

COEFFICIENTS = 64
SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
PROGRESSIVE_SOF = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
FRAME_SOF = frozenset({*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC), *range(0xCD, 0xD0)})
SEQUENTIAL_SOF = frozenset({0xC0, 0xC1, 0xC9})  # baseline, extended sequential Huffman and arithmetic
RESTART_MARKERS = frozenset(range(0xD0, 0xD8))
STANDALONE_MARKERS = frozenset({0x01, SOI, *RESTART_MARKERS})  # TEM, SOI, RST0-7
APP0, APP14, DRI = 0xE0, 0xEE, 0xDD
JFIF_REVISION_1 = {5: 1, 6: 2}  # APP0 payload offsets of the JFIF major and minor version: 1.02
ADOBE_TRANSFORM = 11  # APP14 payload offset of the Adobe colour transform code
# per component count: the transform codes libjpeg knows, and what it assumes for any other
ADOBE_KNOWN_TRANSFORMS = {3: frozenset({0, 1}), 4: frozenset({0, 2})}
ADOBE_GUESSED_TRANSFORM = {3: 1, 4: 2}  # YCbCr, YCCK
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


def with_jfif_revision_1(data: bytes) -> bytes:
    """``data`` with every JFIF APP0 segment of a major version other than 1 (libjpeg warns) marked 1.02."""
    patches: dict[int, int] = {}
    for marker, segment, start, _end in _segments(data):
        if marker == APP0 and segment.startswith(b"JFIF\x00") and len(segment) >= 14 and segment[5] != 1:
            patches.update({start + 4 + offset: value for offset, value in JFIF_REVISION_1.items()})
    return _patched(data, patches)


def with_adobe_transform_guessed(data: bytes) -> bytes:
    """``data`` with each unknown Adobe colour transform code set to what libjpeg assumes for the frame's components."""
    components = next(
        (segment[5] for marker, segment, _start, _end in _segments(data) if marker in FRAME_SOF and len(segment) >= 6),
        0,
    )
    known, guessed = ADOBE_KNOWN_TRANSFORMS.get(components), ADOBE_GUESSED_TRANSFORM.get(components)
    if known is None or guessed is None:
        return data
    return _patched(
        data,
        {
            start + 4 + ADOBE_TRANSFORM: guessed
            for marker, segment, start, _end in _segments(data)
            if marker == APP14 and segment.startswith(b"Adobe") and len(segment) >= 12
            if segment[ADOBE_TRANSFORM] not in known
        },
    )


def with_sequential_scan_parameters(data: bytes) -> bytes:
    """``data`` with Ss=0, Se=63, Ah=Al=0 in every scan header of a sequential frame (which libjpeg ignores there)."""
    patches: dict[int, int] = {}
    sequential = False
    for marker, segment, start, end in _segments(data):
        if marker in FRAME_SOF:
            sequential = marker in SEQUENTIAL_SOF
        elif marker == SOS and sequential and segment:
            spectral = start + 4 + 1 + 2 * segment[0]  # after the component count and selectors
            if spectral + 3 <= end:
                patches.update({spectral: 0, spectral + 1: COEFFICIENTS - 1, spectral + 2: 0})
    return _patched(data, patches)


def stray_byte_positions(data: bytes, count: int, marker: int) -> list[int]:
    """Where ``count`` bytes libjpeg skipped before ``marker`` can start inside entropy-coded data, in file order.

    They end just before that marker (and its fill bytes), where it ends a scan's data. None are
    given in a file with restart intervals: libjpeg adds the bytes its look-ahead swallowed before
    a restart marker, without a warning, to the count of the next warning, so that count can take
    in bytes that are not where the warning is.
    """
    if _uses_restart_intervals(data):
        return []
    positions: list[int] = []
    for begin, end, following in _entropy_data(data):
        start = _fill_start(data, end, begin) - count
        if following == marker and start >= begin:
            positions.append(start)
    return positions


def _uses_restart_intervals(data: bytes) -> bool:
    """Whether a DRI segment sets a restart interval other than 0."""
    return any(marker == DRI and any(segment[:2]) for marker, segment, _start, _end in _segments(data))


def _entropy_data(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(start, end, marker that ends it) of each scan's entropy-coded data; RSTn markers stay inside."""
    scan_data_start: int | None = None
    for marker, _segment, start, end in _segments(data):
        if scan_data_start is not None:
            yield scan_data_start, start, marker
        scan_data_start = end if marker == SOS else None


def _fill_start(data: bytes, marker_start: int, floor: int) -> int:
    """The first of the 0xFF fill bytes that may precede the 0xFF of a marker at ``marker_start``."""
    while marker_start > floor and data[marker_start - 1] == 0xFF:
        marker_start -= 1
    return marker_start


def _patched(data: bytes, patches: dict[int, int]) -> bytes:
    """A copy of ``data`` with the byte at each offset set to its value."""
    copy = bytearray(data)
    for offset, value in patches.items():
        copy[offset] = value
    return bytes(copy)


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
