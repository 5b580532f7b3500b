"""Decode JPEG pixels strictly: data that ends early fails, harmless quirks pass.

libjpeg finishes a JPEG whose entropy-coded data ends early (cut short, often with an end
marker glued on) with only a *warning* ("Corrupt JPEG data: premature end of data segment",
"Premature end of JPEG file") and fills the rest with grey; Pillow drops the warning. So the
pixels come from libjpeg-turbo through simplejpeg in strict mode, where the first warning
raises, and the warnings are told apart:

- a harmless quirk that browsers display (``HARMLESS_WARNINGS``) is patched away in a copy of the
  bytes, with what libjpeg assumes anyway (``jpeg_structure``), and the copy is decoded strictly
  again, so a cut that follows the quirk is still seen: stray bytes between header segments or
  after a scan's entropy-coded data are removed, an unknown JFIF revision becomes 1.02, an unknown
  Adobe colour transform becomes libjpeg's guess (YCbCr for 3 components, YCCK for 4), and a
  sequential scan header gets Ss=0, Se=63, Ah=Al=0. Up to ``MAX_ROUNDS`` quirks per file.
- any other warning (data ran out, a bad Huffman code, a lost restart marker) or error refuses
  the file with libjpeg's own sentence.

libjpeg names the count of stray bytes it skipped and the marker after them, not where they
are: the candidates are the places where that marker ends a scan's entropy-coded data with that
many bytes of data before it. libjpeg reads in file order, so a copy that ends (an end marker in
place of that marker) at the marker it warns at, or at a later one, warns of the same bytes, and
one that ends at an earlier one does not; a bisection finds it, and removing the bytes before it
must change no pixel of libjpeg's lenient decode.

Known gap: Pillow decodes the file leniently as before, so a cut after that point goes unseen, when
stray bytes sit in a file with restart intervals (libjpeg adds bytes its look-ahead swallowed
before a restart marker to the count of a later warning, so the count cannot be placed safely),
when they cannot be located or removing them changes pixels, when a quirk cannot be found in the
bytes, or when a file has more than ``MAX_ROUNDS`` quirks.

A file that lost only its end marker (all of its entropy-coded data is there) decodes cleanly
once the marker is appended, and is kept; a file cut anywhere earlier is not. A file cut exactly
between two scans decodes without any warning; ``jpeg_structure`` finds it.
CMYK/YCCK files are checked the same way at the smallest scale, then decoded by Pillow, which
knows Adobe's inverted CMYK.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simplejpeg
from numpy.typing import NDArray
from PIL import Image

from gateway.imaging.jpeg_structure import (
    missing_scans,
    stray_byte_positions,
    with_adobe_transform_guessed,
    with_jfif_revision_1,
    with_sequential_scan_parameters,
    without_stray_bytes,
)

HARMLESS_WARNINGS = re.compile(
    r"extraneous bytes before marker|unknown JFIF revision|Unknown Adobe color transform"
    r"|Invalid SOS parameters for sequential JPEG",
    re.IGNORECASE,
)
STRAY_BYTES = re.compile(r"(\d+) extraneous bytes before marker 0x([0-9a-f]{2})", re.IGNORECASE)
# the other harmless quirks, each with the patch that writes what libjpeg assumes in its place
QUIRK_PATCHES: tuple[tuple[re.Pattern[str], Callable[[bytes], bytes]], ...] = (
    (re.compile(r"unknown JFIF revision", re.IGNORECASE), with_jfif_revision_1),
    (re.compile(r"Unknown Adobe color transform", re.IGNORECASE), with_adobe_transform_guessed),
    (re.compile(r"Invalid SOS parameters for sequential JPEG", re.IGNORECASE), with_sequential_scan_parameters),
)
MAX_ROUNDS = 16  # quirks patched away in one file before Pillow decodes it leniently
DATA_RAN_OUT = re.compile(r"premature end", re.IGNORECASE)
FILE_RAN_OUT = "Premature end of JPEG file"
EOI = b"\xff\xd9"
PIXEL_FORMATS = {"L": "GRAY", "RGB": "RGB"}  # Pillow mode -> simplejpeg colour space


class IncompleteJpegError(ValueError):
    """The JPEG's data ends early or is corrupt; the message is a sentence for the client."""


def decode_jpeg(data: bytes, mode: str, min_size: tuple[int, int]) -> Image.Image | None:
    """The pixels of a whole JPEG (Pillow ``mode`` L, RGB or CMYK), scaled down on load to no less than ``min_size``.

    None when the file passed the checks but Pillow is to decode it: CMYK, or a harmless quirk
    that could not be patched away. Raises ``IncompleteJpegError`` when the data ends early or is corrupt.
    """
    target = PIXEL_FORMATS.get(mode)
    pixels = _decode_strictly(data, target or "CMYK", min_size if target else (1, 1))
    if missing_scans(data):
        raise IncompleteJpegError("the JPEG data ends early: some of its scans are missing")
    if target is None or pixels is None:
        return None
    if target == "GRAY":
        return Image.fromarray(np.ascontiguousarray(pixels[:, :, 0]))
    return Image.fromarray(pixels)


def _decode_strictly(data: bytes, colour_space: str, min_size: tuple[int, int]) -> NDArray[np.uint8] | None:
    """The pixels, each harmless quirk patched away in turn; None for one that could not be."""
    decoder = _Decoder(colour_space, *min_size)
    for _round in range(MAX_ROUNDS):
        try:
            return decoder.pixels(data)
        except ValueError as exc:
            message = _libjpeg_sentence(exc)
            refusal = _refusal(data, message)
            if refusal is not None:
                raise refusal from exc
            patched = _without_quirk(data, message, decoder)
            if patched is None:
                return None
            data = patched
    return None


@dataclass(frozen=True)
class _Decoder:
    """libjpeg-turbo through simplejpeg, at one colour space and scale."""

    colour_space: str
    min_width: int
    min_height: int

    def pixels(self, data: bytes, *, strict: bool = True) -> NDArray[np.uint8]:
        """Raises ValueError on libjpeg's first warning when ``strict``, on an error only otherwise."""
        pixels: NDArray[np.uint8] = simplejpeg.decode_jpeg(
            data, self.colour_space, min_width=self.min_width, min_height=self.min_height, strict=strict
        )
        return pixels

    def warning(self, data: bytes) -> str | None:
        """libjpeg's first warning or error; None when ``data`` decodes cleanly."""
        try:
            self.pixels(data)
        except ValueError as exc:
            return _libjpeg_sentence(exc)
        return None

    def same_pixels(self, data: bytes, other: bytes) -> bool:
        """Whether libjpeg, reading past its warnings, makes the same pixels of both."""
        try:
            return bool(np.array_equal(self.pixels(data, strict=False), self.pixels(other, strict=False)))
        except ValueError:
            return False


def _refusal(data: bytes, message: str) -> IncompleteJpegError | None:
    """The error for a warning that is no harmless quirk; None for a quirk, or a file that lost only its end marker."""
    if FILE_RAN_OUT in message and not data.endswith(EOI):  # whole data, only the end marker lost?
        return None
    if DATA_RAN_OUT.search(message):
        return IncompleteJpegError(f"the JPEG data ends early (libjpeg: {message})")
    if not HARMLESS_WARNINGS.search(message):
        return IncompleteJpegError(f"the JPEG data is corrupt (libjpeg: {message})")
    return None


def _without_quirk(data: bytes, message: str, decoder: _Decoder) -> bytes | None:
    """A copy of ``data`` without what libjpeg's ``message`` warns about; None when it cannot be found."""
    if FILE_RAN_OUT in message:
        return data + EOI
    stray = STRAY_BYTES.search(message)
    if stray is not None:
        return _without_stray_bytes(data, (int(stray[1]), int(stray[2], 16)), decoder)
    patched = next((patch(data) for quirk, patch in QUIRK_PATCHES if quirk.search(message)), data)
    return patched if patched != data else None


def _without_stray_bytes(data: bytes, stray: tuple[int, int], decoder: _Decoder) -> bytes | None:
    """``data`` without the ``stray`` (count, marker) bytes libjpeg skipped; None when they cannot be located.

    Between header segments they are plain to see. In entropy-coded data, libjpeg reads in file
    order: a copy that ends (the marker replaced by an end marker) at the marker it warns at, or at
    any later one, gets a warning of the same bytes; a copy that ends at an earlier one does not.
    That marker is found by bisection, and the bytes before it must be ones libjpeg skips:
    removing them changes no pixel.
    """
    cleaned = without_stray_bytes(data)
    if cleaned != data:
        return cleaned
    count, marker = stray
    starts = stray_byte_positions(data, count, marker)
    low, high = 0, len(starts)
    while low < high:
        middle = (low + high) // 2
        if _same_stray_bytes(decoder.warning(data[: starts[middle] + count] + EOI), count, marker):
            high = middle
        else:
            low = middle + 1
    if low == len(starts):
        return None
    candidate = data[: starts[low]] + data[starts[low] + count :]
    return candidate if decoder.same_pixels(candidate, data) else None


def _same_stray_bytes(warning: str | None, count: int, marker: int) -> bool:
    """Whether ``warning`` is of ``count`` stray bytes before ``marker``, or before the end marker put in its place."""
    stray = STRAY_BYTES.search(warning or "")
    return stray is not None and int(stray[1]) == count and int(stray[2], 16) in (marker, EOI[1])


def _libjpeg_sentence(exc: ValueError) -> str:
    """libjpeg's message without the TurboJPEG function name it is prefixed with."""
    text = str(exc)
    _function, separator, message = text.partition("(): ")
    return (message if separator else text).strip().rstrip(".")
