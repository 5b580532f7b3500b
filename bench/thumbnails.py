"""Thumbnail stage benchmark: naive Pillow vs ours vs libvips, single thread, medians.

Run with ``make bench-thumbnails`` (or ``python -m bench.thumbnails``). Each round times, per image,
the whole thumbnail stage: decode, orientation, medium (fits 640) and small (fits 160) JPEGs.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("VIPS_CONCURRENCY", "1")  # single thread, like one Pillow call

import pyvips
from PIL import Image, ImageOps

from gateway.imaging.images import decode, extract_metadata, make_thumbnails

CORPUS_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "corpus"
JPEGS = ("large_12mp_olympus_museum.jpg", "panorama_nokia_8_3_phone.jpg", "nature_wisteria_iphone6.jpg")
SMALL_PX, MEDIUM_PX, QUALITY = 160, 640, 85


def naive(path: Path) -> None:
    """What most code does: decode everything, resize the full image twice with LANCZOS."""
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened.convert("RGB"))
    for box in (MEDIUM_PX, SMALL_PX):
        scale = min(1.0, box / image.width, box / image.height)
        resized = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
        resized.save(io.BytesIO(), "JPEG", quality=QUALITY)


def ours(path: Path) -> None:
    image_format = "PNG" if path.suffix == ".png" else "JPEG"
    decoded = decode(path, image_format, MEDIUM_PX)
    metadata = extract_metadata(decoded.exif)
    make_thumbnails(decoded.pixels, metadata.orientation, SMALL_PX, MEDIUM_PX, QUALITY)


def libvips(path: Path) -> None:
    medium = pyvips.Image.thumbnail_buffer(path.read_bytes(), MEDIUM_PX, height=MEDIUM_PX).copy_memory()
    medium.write_to_buffer(f".jpg[Q={QUALITY}]")
    medium.thumbnail_image(SMALL_PX, height=SMALL_PX).write_to_buffer(f".jpg[Q={QUALITY}]")


def time_ms(function: Callable[[Path], None], path: Path) -> float:
    started = time.perf_counter()
    function(path)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    pyvips.cache_set_max(0)
    with tempfile.TemporaryDirectory() as scratch:
        large_png = Path(scratch) / "large_12mp_olympus_museum.png"
        with Image.open(CORPUS_DIR / JPEGS[0]) as source:
            source.save(large_png, "PNG", compress_level=6)
        inputs = [CORPUS_DIR / name for name in JPEGS] + [large_png]
        methods: dict[str, Callable[[Path], None]] = {"naive": naive, "ours": ours, "libvips": libvips}
        samples: dict[tuple[str, str], list[float]] = {}
        described: dict[str, tuple[str, str]] = {}
        for path in inputs:
            with Image.open(path) as opened:
                described[path.name] = (opened.format or "?", f"{opened.width}x{opened.height}")
        for path in inputs:  # warm-up
            for function in methods.values():
                function(path)
        for _ in range(args.rounds):  # interleaved: noise hits every method alike
            for path in inputs:
                for name, function in methods.items():
                    samples.setdefault((path.name, name), []).append(time_ms(function, path))
    print(f"Thumbnail stage, single thread, median of {args.rounds} interleaved rounds (ms)\n")
    print("| image | format | size | naive Pillow | ours | libvips | naive/ours | ours/libvips |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for path in inputs:
        image_format, size = described[path.name]
        medians = {name: statistics.median(samples[(path.name, name)]) for name in methods}
        print(
            f"| {path.name} | {image_format} | {size} | {medians['naive']:.1f} | {medians['ours']:.1f} | "
            f"{medians['libvips']:.1f} | {medians['naive'] / medians['ours']:.2f} | "
            f"{medians['ours'] / medians['libvips']:.2f} |"
        )


if __name__ == "__main__":
    main()
