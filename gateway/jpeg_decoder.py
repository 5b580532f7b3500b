"""Decode JPEG pixels strictly: data that ends early fails, harmless quirks pass.

libjpeg finishes a JPEG whose entropy-coded data ends early (cut short, often with an end
marker glued on) with only a *warning* ("Corrupt JPEG data: premature end of data segment",
"Premature end of JPEG file") and fills the rest with grey; Pillow drops the warning. So the
pixels come from libjpeg-turbo through simplejpeg in strict mode, where the first warning
raises, and the warnings are told apart:

- harmless quirks that browsers display (``HARMLESS_WARNINGS``): stray bytes between header
  segments are removed and the file is decoded strictly again; otherwise (stray bytes after a
  scan, an unknown JFIF revision...) Pillow decodes it leniently, and a cut that follows such a
  quirk goes unseen;
- any other warning (data ran out, a bad Huffman code, a lost restart marker) or error refuses
  the file with libjpeg's own sentence.

A file that lost only its end marker (all of its entropy-coded data is there) decodes cleanly
once the marker is appended, and is kept; a file cut anywhere earlier is not. A file cut exactly
between two scans decodes without any warning; ``jpeg_structure`` finds it.
CMYK/YCCK files are checked the same way at the smallest scale, then decoded by Pillow, which
knows Adobe's inverted CMYK.
"""

from __future__ import annotations

import re

import numpy as np
import simplejpeg
from numpy.typing import NDArray
from PIL import Image

from gateway.jpeg_structure import missing_scans, without_stray_bytes

HARMLESS_WARNINGS = re.compile(
    r"extraneous bytes before marker|unknown JFIF revision|Unknown Adobe color transform"
    r"|Invalid SOS parameters for sequential JPEG",
    re.IGNORECASE,
)
STRAY_BYTES = "extraneous bytes before marker"
DATA_RAN_OUT = re.compile(r"premature end", re.IGNORECASE)
FILE_RAN_OUT = "Premature end of JPEG file"
EOI = b"\xff\xd9"
PIXEL_FORMATS = {"L": "GRAY", "RGB": "RGB"}  # Pillow mode -> simplejpeg colour space


class IncompleteJpegError(ValueError):
    """The JPEG's data ends early or is corrupt; the message is a sentence for the client."""


def decode_jpeg(data: bytes, mode: str, min_size: tuple[int, int]) -> Image.Image | None:
    """The pixels of a whole JPEG (Pillow ``mode`` L, RGB or CMYK), scaled down on load to no less than ``min_size``.

    None when the file passed the checks but Pillow is to decode it: CMYK, or a first warning
    that is a harmless quirk. Raises ``IncompleteJpegError`` when the data ends early or is corrupt.
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
    """The pixels; None for a harmless quirk that is not stray bytes between header segments."""
    width, height = min_size
    try:
        pixels: NDArray[np.uint8] = simplejpeg.decode_jpeg(
            data, colour_space, min_width=width, min_height=height, strict=True
        )
    except ValueError as exc:
        message = _libjpeg_sentence(exc)
        if FILE_RAN_OUT in message and not data.endswith(EOI):  # whole data, only the end marker lost?
            return _decode_strictly(data + EOI, colour_space, min_size)
        if DATA_RAN_OUT.search(message):
            raise IncompleteJpegError(f"the JPEG data ends early (libjpeg: {message})") from exc
        if not HARMLESS_WARNINGS.search(message):
            raise IncompleteJpegError(f"the JPEG data is corrupt (libjpeg: {message})") from exc
        cleaned = without_stray_bytes(data) if STRAY_BYTES in message else data
        return _decode_strictly(cleaned, colour_space, min_size) if cleaned != data else None
    return pixels


def _libjpeg_sentence(exc: ValueError) -> str:
    """libjpeg's message without the TurboJPEG function name it is prefixed with."""
    text = str(exc)
    _function, separator, message = text.partition("(): ")
    return (message if separator else text).strip().rstrip(".")
