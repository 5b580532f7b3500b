"""JPEGs made in memory for the integrity tests: cut ones, whole ones with flat grey, camera quirks."""

from __future__ import annotations

import io
import re
from typing import Any

from PIL import Image, ImageDraw

from tests.support import CORPUS_DIR

EOI = b"\xff\xd9"
MID_GREY = (128, 128, 128)
# Every 2.5 % from 5 % to 97.5 %, then the last per cents, where a cut loses only the last MCUs.
CUT_FRACTIONS = [step / 1000 for step in range(50, 1000, 25)] + [0.99, 0.995, 0.998, 0.999]
JPEG_KINDS: dict[str, dict[str, Any]] = {
    "baseline-444": {"subsampling": 0},
    "baseline-420": {"subsampling": 2},
    "progressive": {"progressive": True},
}


def encode(image: Image.Image, quality: int = 90, **save_options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, **save_options)
    return buffer.getvalue()


def photo() -> Image.Image:
    with Image.open(CORPUS_DIR / "outdoor_rocket_launch.jpg") as opened:
        return opened.convert("RGB")


def cut(data: bytes, fraction: float, *, end_marker: bool) -> bytes:
    return data[: int(len(data) * fraction)] + (EOI if end_marker else b"")


def letterboxed_photo() -> Image.Image:
    """A photo above a flat #808080 bar that fills the bottom of the frame."""
    picture = photo().resize((320, 180))
    frame = Image.new("RGB", (320, 260), MID_GREY)
    frame.paste(picture, (0, 0))
    return frame


def screenshot_with_grey_footer() -> Image.Image:
    screen = Image.new("RGB", (400, 300), (245, 245, 250))
    draw = ImageDraw.Draw(screen)
    draw.rectangle((0, 0, 399, 40), fill=(30, 60, 160))
    for row in range(60, 220, 24):
        draw.rectangle((20, row, 300, row + 10), fill=(40, 40, 40))
    draw.rectangle((0, 240, 399, 299), fill=MID_GREY)
    return screen


def greyscale_scan_on_grey() -> Image.Image:
    scan = Image.new("L", (300, 400), 128)
    draw = ImageDraw.Draw(scan)
    draw.rectangle((30, 30, 200, 120), fill=240)
    for row in range(40, 110, 12):
        draw.line((40, row, 180, row), fill=20, width=3)
    return scan


def chart_with_grey_lower_right() -> Image.Image:
    chart = Image.new("RGB", (400, 320), (255, 255, 255))
    draw = ImageDraw.Draw(chart)
    for index, height in enumerate((40, 90, 60, 120, 30)):
        draw.rectangle((20 + index * 36, 150 - height, 44 + index * 36, 150), fill=(200, 60, 40))
    draw.rectangle((200, 160, 399, 319), fill=MID_GREY)
    return chart


GREY_CASES: dict[str, tuple[Image.Image, dict[str, Any]]] = {
    "letterbox-bar": (letterboxed_photo(), {}),
    "screenshot-grey-footer": (screenshot_with_grey_footer(), {"subsampling": 2}),
    "greyscale-scan-grey-background": (greyscale_scan_on_grey(), {}),
    "chart-grey-lower-right": (chart_with_grey_lower_right(), {"subsampling": 0}),
    "letterbox-bar-progressive": (letterboxed_photo(), {"progressive": True}),
    "all-grey": (Image.new("RGB", (64, 64), MID_GREY), {}),
}


def with_stray_bytes(data: bytes, before_marker: bytes, stray: bytes = b"\x00\x00\x00") -> bytes:
    """``data`` with ``stray`` bytes inserted in front of the first ``before_marker``."""
    position = data.index(before_marker, 2)
    return data[:position] + stray + data[position:]


def scan_offsets(data: bytes) -> list[int]:
    """Offsets of the SOS markers of a JPEG written by Pillow (no 0xFFDA inside its entropy data)."""
    offsets, position = [], data.find(b"\xff\xda")
    while position >= 0:
        offsets.append(position)
        position = data.find(b"\xff\xda", position + 2)
    return offsets


# Harmless quirks libjpeg warns about (and browsers show), written into a whole file.
ADOBE_APP14 = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00"  # then the one-byte colour transform code
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_RESTART = re.compile(rb"\xff[\xd0-\xd7]")


def with_jfif_revision(data: bytes, major: int = 2) -> bytes:
    version = data.index(b"JFIF\x00") + 5
    return data[:version] + bytes([major]) + data[version + 1 :]


def with_adobe_transform(data: bytes, transform: int = 7) -> bytes:
    """``data`` with its JFIF APP0 segment replaced by an Adobe APP14 one (JFIF would override its transform)."""
    app0 = data.index(b"\xff\xe0")
    end = app0 + 2 + int.from_bytes(data[app0 + 2 : app0 + 4], "big")
    return data[:app0] + ADOBE_APP14 + bytes([transform]) + data[end:]


def with_scan_parameters(data: bytes, spectral: bytes = b"\x00\x00\x00") -> bytes:
    """``data`` with Ss, Se, Ah/Al of every scan header set to ``spectral`` (a baseline file must have 0, 63, 0)."""
    patched = bytearray(data)
    for offset in scan_offsets(data):
        start = offset + 5 + 2 * data[offset + 4]
        patched[start : start + 3] = spectral
    return bytes(patched)


def with_stray_bytes_after_scan(data: bytes, scan: int = 0, stray: bytes = b"\x00" * 16) -> bytes:
    """``data`` with ``stray`` bytes between the entropy-coded data of scan number ``scan`` and the marker after it."""
    offset = scan_offsets(data)[scan]
    header_end = offset + 2 + int.from_bytes(data[offset + 2 : offset + 4], "big")
    marker = _SCAN_END.search(data, header_end)
    assert marker is not None
    return data[: marker.start()] + stray + data[marker.start() :]


def with_stray_bytes_before_restart(data: bytes, restart: int = 3, stray: bytes = b"\x5a" * 5) -> bytes:
    """``data`` (written with restart markers) with ``stray`` bytes before its restart marker number ``restart``."""
    offsets = [found.start() for found in _RESTART.finditer(data, scan_offsets(data)[0])]
    return data[: offsets[restart]] + stray + data[offsets[restart] :]
