"""PNG thumbnails show what a browser shows: 16-bit scaled to 8-bit, tRNS colours on white.

Each PNG is written chunk by chunk from known raw values; the expected picture is computed from
those values with numpy (an independent decode), never with Pillow.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from gateway.imaging import images as imaging

WIDTH, HEIGHT = 64, 48
GREY, RGB, PALETTE, RGBA = 0, 2, 3, 6  # PNG colour types
MAX_MEAN_ERROR = 3.0  # JPEG at quality 95 on smooth gradients


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(rows: list[bytes], depth: int, colour_type: int, *extra_chunks: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, depth, colour_type, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + row for row in rows))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + b"".join(extra_chunks)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


def gradient16(scale: int = 1) -> NDArray[np.int64]:
    """16-bit values that use the low byte too, with a block of one value (the tRNS key) on top."""
    ramp = np.linspace(300, 65_000, WIDTH * HEIGHT).reshape(HEIGHT, WIDTH).astype(np.int64) // scale
    ramp[:12, :20] = 40_000 // scale
    return ramp


def thumbnail_of(tmp_path: Path, data: bytes) -> NDArray[np.float64]:
    path = tmp_path / "upload.png"
    path.write_bytes(data)
    decoded = imaging.decode(path, "PNG", 640)
    small, _medium = imaging.make_thumbnails(decoded.pixels, 1, 160, 640, 95)
    with Image.open(io.BytesIO(small.data)) as opened:
        assert opened.size == (WIDTH, HEIGHT)
        return np.asarray(opened.convert("RGB"), dtype=np.float64)


def as_rgb(grey: NDArray[np.int64]) -> NDArray[np.float64]:
    return np.repeat(grey[:, :, None], 3, axis=2).astype(np.float64)


def mean_error(thumbnail: NDArray[np.float64], expected: NDArray[np.float64]) -> float:
    return float(np.abs(thumbnail - expected).mean())


def test_sixteen_bit_grey_with_a_transparent_grey_is_scaled_then_flattened_on_white(tmp_path: Path) -> None:
    values = gradient16()
    data = png([row.astype(">u2").tobytes() for row in values], 16, GREY, chunk(b"tRNS", struct.pack(">H", 40_000)))
    expected = as_rgb(np.where(values == 40_000, 255, values >> 8))
    thumbnail = thumbnail_of(tmp_path, data)
    assert mean_error(thumbnail, expected) < MAX_MEAN_ERROR
    assert thumbnail[2:10, 2:18].min() > 245  # the transparent block is white, not grey or black


def test_sixteen_bit_grey_without_trns_keeps_its_tones(tmp_path: Path) -> None:
    values = gradient16()
    data = png([row.astype(">u2").tobytes() for row in values], 16, GREY)
    assert mean_error(thumbnail_of(tmp_path, data), as_rgb(values >> 8)) < MAX_MEAN_ERROR


def test_sixteen_bit_rgb_is_its_high_byte(tmp_path: Path) -> None:
    channels = np.stack([gradient16(), gradient16(2), 65_535 - gradient16()], axis=2)
    data = png([row.astype(">u2").tobytes() for row in channels], 16, RGB)
    assert mean_error(thumbnail_of(tmp_path, data), (channels >> 8).astype(np.float64)) < MAX_MEAN_ERROR


def test_sixteen_bit_rgb_with_a_transparent_colour_is_flattened_on_white(tmp_path: Path) -> None:
    channels = np.stack([gradient16(), gradient16(2), gradient16(3)], axis=2)
    key = struct.pack(">HHH", 40_000, 20_000, 13_333)
    data = png([row.astype(">u2").tobytes() for row in channels], 16, RGB, chunk(b"tRNS", key))
    transparent = (channels == (40_000, 20_000, 13_333)).all(axis=2)
    expected = np.where(transparent[:, :, None], 255, channels >> 8).astype(np.float64)
    assert mean_error(thumbnail_of(tmp_path, data), expected) < MAX_MEAN_ERROR


def test_sixteen_bit_rgba_is_composited_on_white(tmp_path: Path) -> None:
    colour = np.stack([gradient16(), gradient16(2), gradient16(3)], axis=2)
    alpha = np.broadcast_to(np.linspace(0, 65_535, WIDTH).astype(np.int64), (HEIGHT, WIDTH))
    data = png([row.astype(">u2").tobytes() for row in np.dstack([colour, alpha])], 16, RGBA)
    opacity = (alpha >> 8)[:, :, None] / 255
    expected = (colour >> 8) * opacity + 255 * (1 - opacity)
    assert mean_error(thumbnail_of(tmp_path, data), expected) < MAX_MEAN_ERROR


@pytest.mark.parametrize(("depth", "key"), [(8, 156), (4, 9), (2, 2)])
def test_low_and_eight_bit_grey_with_a_transparent_grey_is_flattened_on_white(
    tmp_path: Path, depth: int, key: int
) -> None:
    levels = 2**depth
    values = (np.arange(WIDTH * HEIGHT).reshape(HEIGHT, WIDTH) * levels // (WIDTH * HEIGHT)).astype(np.int64)
    values[:12, :20] = key
    per_byte = 8 // depth
    packed = [
        bytes(
            sum(int(value) << (8 - depth * (index + 1)) for index, value in enumerate(row[start : start + per_byte]))
            for start in range(0, WIDTH, per_byte)
        )
        for row in values
    ]
    data = png(packed, depth, GREY, chunk(b"tRNS", struct.pack(">H", key)))
    expected = as_rgb(np.where(values == key, 255, values * 255 // (levels - 1)))
    assert mean_error(thumbnail_of(tmp_path, data), expected) < MAX_MEAN_ERROR * 2  # hard steps ring a little


def test_paletted_png_with_partial_transparency_is_composited_on_white(tmp_path: Path) -> None:
    palette = np.array([(index, 255 - index, index // 2 + 60) for index in range(256)], dtype=np.int64)
    alpha = np.array([(index * 3) % 256 for index in range(256)], dtype=np.int64)
    indices = (np.arange(WIDTH * HEIGHT).reshape(HEIGHT, WIDTH) // 12 % 256).astype(np.uint8)
    data = png(
        [row.tobytes() for row in indices],
        8,
        PALETTE,
        chunk(b"PLTE", palette.astype(np.uint8).tobytes()),
        chunk(b"tRNS", alpha.astype(np.uint8).tobytes()),
    )
    opacity = (alpha[indices] / 255)[:, :, None]
    expected = palette[indices] * opacity + 255 * (1 - opacity)
    assert mean_error(thumbnail_of(tmp_path, data), expected) < MAX_MEAN_ERROR * 2
