"""Imaging on images made in memory: formats, limits, corrupt data, alpha, EXIF edge cases."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from gateway.errors import ImageDecodeError, ImageTooLargeError, UnreadableImageError, UnsupportedImageError
from gateway.imaging import images as imaging
from tests.support import make_image_bytes, png_header_only


def write(tmp_path: Path, data: bytes, name: str = "upload.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"GIF89a....", "GIF"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "WebP"),
        (b"II*\x00\x08\x00\x00\x00", "TIFF"),
        (b"BM6\x00\x00\x00", "BMP"),
        (b"\x00\x00\x00\x18ftypheic", "HEIC/HEIF"),
        (b"\x00\x00\x00\x1cftypavif", "AVIF"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'>", "SVG/XML"),
        (b"<!DOCTYPE html><html>", "HTML"),
        (b"hello, world", "an unknown format"),
        (bytes(range(32)), "an unknown format"),
    ],
)
def test_non_jpeg_png_leading_bytes_are_unsupported_and_named(head: bytes, expected: str) -> None:
    with pytest.raises(UnsupportedImageError, match=expected):
        imaging.ensure_supported(head)


def test_format_is_decided_by_bytes_not_name(tmp_path: Path) -> None:
    path = write(tmp_path, make_image_bytes(image_format="PNG"), "photo.jpg")
    header = imaging.read_header(path, imaging.ensure_supported(path.read_bytes()[:32]), 10_000)
    assert header.format == "PNG"


def test_mpo_is_read_as_jpeg(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (40, 30), color) for color in ((255, 0, 0), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "MPO", save_all=True, append_images=frames[1:])
    path = write(tmp_path, buffer.getvalue())
    header = imaging.read_header(path, imaging.ensure_supported(buffer.getvalue()[:32]), 10_000)
    assert (header.format, header.width, header.height) == ("JPEG", 40, 30)
    decoded = imaging.decode(path, "JPEG", 640)
    _small, medium = imaging.make_thumbnails(decoded.pixels, 1, 160, 640, 85)
    assert (medium.width, medium.height) == (40, 30)


@pytest.mark.parametrize("dimensions", [(10_000, 10_000), (100_000, 100_000), (8_000, 7_000)])
def test_bomb_header_is_refused_before_decoding(tmp_path: Path, dimensions: tuple[int, int]) -> None:
    path = write(tmp_path, png_header_only(*dimensions))
    with pytest.raises(ImageTooLargeError, match="without decoding"):
        imaging.read_header(path, "PNG", 50_000_000)


def test_pixel_limit_is_a_setting(tmp_path: Path) -> None:
    path = write(tmp_path, make_image_bytes((100, 100)))
    with pytest.raises(ImageTooLargeError, match="10,000 pixels"):
        imaging.read_header(path, "JPEG", 9_999)
    assert imaging.read_header(path, "JPEG", 10_000).width == 100


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff<html><body>not a jpeg</body></html>",
        b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + b"\x00" * 13 + b"\xde\xad\xbe\xef",
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8\xff",
    ],
    ids=["html-behind-jpeg-magic", "png-with-broken-ihdr", "png-magic-only", "jpeg-magic-only"],
)
def test_magic_bytes_with_unparseable_header_is_unreadable(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, data)
    with pytest.raises(UnreadableImageError) as caught:
        imaging.read_header(path, imaging.ensure_supported(data[:32]), 50_000_000)
    assert str(tmp_path) not in caught.value.detail, "a client must never see a server-side path"


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_truncated_data_fails_decoding_instead_of_grey_fill(tmp_path: Path, image_format: str) -> None:
    noise = Image.effect_noise((400, 300), 80).convert("RGB")
    buffer = io.BytesIO()
    noise.save(buffer, image_format)
    data = buffer.getvalue()
    path = write(tmp_path, data[: len(data) // 2])
    header = imaging.read_header(path, image_format, 50_000_000)
    assert header.width == 400
    with pytest.raises(ImageDecodeError, match="corrupt or truncated"):
        imaging.decode(path, image_format, 640)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_alpha_is_flattened_on_white(tmp_path: Path, mode: str) -> None:
    transparent = Image.new("RGBA", (50, 50), (0, 0, 0, 0)).convert(mode)
    if mode == "P":
        transparent.info["transparency"] = 0
    buffer = io.BytesIO()
    transparent.save(buffer, "PNG")
    path = write(tmp_path, buffer.getvalue())
    decoded = imaging.decode(path, "PNG", 640)
    small, _ = imaging.make_thumbnails(decoded.pixels, 1, 160, 640, 90)
    with Image.open(io.BytesIO(small.data)) as opened:
        assert opened.mode == "RGB"
        red, green, blue = opened.getpixel((25, 25))  # type: ignore[misc]
        assert min(red, green, blue) > 245


def test_sixteen_bit_grayscale_png_keeps_its_tones(tmp_path: Path) -> None:
    gradient = Image.linear_gradient("L").resize((64, 64)).convert("I")
    gradient = gradient.point(lambda value: value * 257).convert("I;16")
    buffer = io.BytesIO()
    gradient.save(buffer, "PNG")
    path = write(tmp_path, buffer.getvalue())
    decoded = imaging.decode(path, "PNG", 640)
    small, _ = imaging.make_thumbnails(decoded.pixels, 1, 160, 640, 90)
    with Image.open(io.BytesIO(small.data)) as opened:
        top, bottom = opened.getpixel((32, 2)), opened.getpixel((32, 61))
    assert top[0] < 30
    assert bottom[0] > 220


def test_small_images_are_never_upscaled(tmp_path: Path) -> None:
    path = write(tmp_path, make_image_bytes((90, 40)))
    decoded = imaging.decode(path, "JPEG", 640)
    small, medium = imaging.make_thumbnails(decoded.pixels, 1, 160, 640, 85)
    assert (small.width, small.height) == (90, 40)
    assert (medium.width, medium.height) == (90, 40)


def test_cmyk_jpeg_becomes_rgb_thumbnail(tmp_path: Path) -> None:
    path = write(tmp_path, make_image_bytes((80, 60), mode="CMYK", color=(0, 255, 255, 0)))
    decoded = imaging.decode(path, "JPEG", 640)
    small, _ = imaging.make_thumbnails(decoded.pixels, 1, 160, 640, 85)
    with Image.open(io.BytesIO(small.data)) as opened:
        assert opened.mode == "RGB"


def _exif(**tags: object) -> Image.Exif:
    exif = Image.Exif()
    exif_ifd = exif.get_ifd(0x8769)
    for name, value in tags.items():
        if name in ("DateTimeOriginal", "OffsetTimeOriginal", "OffsetTime"):
            exif_ifd[{"DateTimeOriginal": 0x9003, "OffsetTimeOriginal": 0x9011, "OffsetTime": 0x9010}[name]] = value
        else:
            exif[{"Orientation": 0x0112, "Make": 0x010F, "Model": 0x0110, "DateTime": 0x0132}[name]] = value
    return exif


@pytest.mark.parametrize(
    ("tags", "expected_taken_at"),
    [
        ({"DateTimeOriginal": "2021:06:01 12:30:45"}, "2021-06-01T12:30:45"),
        ({"DateTimeOriginal": "2021:06:01 12:30:45", "OffsetTimeOriginal": "+02:00"}, "2021-06-01T12:30:45+02:00"),
        ({"DateTimeOriginal": "0000:00:00 00:00:00"}, None),
        ({"DateTimeOriginal": "    :  :     :  :  "}, None),
        ({"DateTimeOriginal": "2021:13:45 99:99:99"}, None),
        ({"DateTimeOriginal": b"\x00\x00"}, None),
        ({}, None),
    ],
)
def test_exif_dates_are_iso_or_null_never_a_crash(tags: dict[str, object], expected_taken_at: str | None) -> None:
    assert imaging.extract_metadata(_exif(**tags)).taken_at == expected_taken_at


@pytest.mark.parametrize(("value", "expected"), [(6, 6), (0, 1), (9, 1), ("x", 1), (None, 1)])
def test_orientation_outside_one_to_eight_is_one(value: object, expected: int) -> None:
    tags = {} if value is None else {"Orientation": value}
    assert imaging.extract_metadata(_exif(**tags)).orientation == expected


def test_camera_strings_are_cleaned() -> None:
    metadata = imaging.extract_metadata(_exif(Make="Canon\x00\x00 ", Model=b"EOS\x00"))
    assert (metadata.camera_make, metadata.camera_model) == ("Canon", "EOS")


def test_exif_survives_a_round_trip_through_a_real_file(tmp_path: Path) -> None:
    exif = _exif(Orientation=8, Make="Acme", Model="One", DateTime="2020:01:02 03:04:05")
    path = write(tmp_path, make_image_bytes((60, 30), exif=exif.tobytes()))
    decoded = imaging.decode(path, "JPEG", 640)
    metadata = imaging.extract_metadata(decoded.exif)
    assert metadata.orientation == 8
    assert metadata.file_datetime == "2020-01-02T03:04:05"
    small, _ = imaging.make_thumbnails(decoded.pixels, metadata.orientation, 160, 640, 85)
    assert (small.width, small.height) == (30, 60)
