"""Every file of tests/data/corpus goes through our imaging functions as MANIFEST.tsv expects."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from gateway.errors import BadUploadError, GatewayError, UnsupportedImageError
from gateway.imaging import images as imaging
from tests.support import CORPUS_DIR, UPRIGHT_MAX_MEAN_DIFFERENCE, corpus_rows, difference_from_upright

ROWS = corpus_rows()
ACCEPTED = [row for row in ROWS if row["expected"] == "accept"]
REJECTED = [row for row in ROWS if row["expected"] == "reject"]


def _size(text: str) -> tuple[int, int]:
    width, height = text.split("x")
    return int(width), int(height)


def _validate(path: Path) -> imaging.ImageHeader:
    data = path.read_bytes()
    if not data:
        raise BadUploadError("empty")
    return imaging.read_header(path, imaging.ensure_supported(data[:32]), 50_000_000)


@pytest.mark.parametrize("row", ACCEPTED, ids=lambda row: row["file"])
def test_accepted_corpus_photo_matches_manifest(row: dict[str, str]) -> None:
    path = CORPUS_DIR / row["file"]
    header = _validate(path)
    assert header.format == row["format"]
    assert (header.width, header.height) == _size(row["stored_wxh"])

    decoded = imaging.decode(path, header.format, 640)
    metadata = imaging.extract_metadata(decoded.exif)
    expected_taken = row["exif_datetime_original"]
    if expected_taken:
        assert metadata.taken_at is not None
        assert metadata.taken_at.startswith(expected_taken.replace(":", "-", 2).replace(" ", "T"))
    else:
        assert metadata.taken_at is None
    assert metadata.camera_make == (row["camera_make"] or None)
    assert metadata.camera_model == (row["camera_model"] or None)

    small, medium = imaging.make_thumbnails(decoded.pixels, metadata.orientation, 160, 640, 85)
    displayed = _size(row["displayed_wxh"])
    for thumbnail, box in ((small, 160), (medium, 640)):
        # the displayed size (orientation applied) scaled into the box, never up
        expected_w, expected_h = imaging.fit_within(displayed, box)
        assert abs(thumbnail.width - expected_w) <= 1
        assert abs(thumbnail.height - expected_h) <= 1
        assert thumbnail.width <= min(box, displayed[0])
        assert thumbnail.height <= min(box, displayed[1])
        with Image.open(io.BytesIO(thumbnail.data)) as opened:
            assert opened.format == "JPEG"
            assert opened.mode == "RGB"
            assert not opened.getexif()
            assert "exif" not in opened.info
    # upright, not mirrored: the picture matches Pillow's own exif_transpose of the full image
    # (a wrong turn or flip differs by 30-100 grey levels on average; a right one by 2-7)
    assert difference_from_upright(small.data, path) < UPRIGHT_MAX_MEAN_DIFFERENCE


@pytest.mark.parametrize("row", REJECTED, ids=lambda row: row["file"])
def test_rejected_corpus_file_is_refused_with_its_reason(row: dict[str, str]) -> None:
    expected_error: dict[str, type[GatewayError]] = {
        "empty": BadUploadError,
        "unsupported-format": UnsupportedImageError,
        "not-an-image": UnsupportedImageError,
    }
    with pytest.raises(expected_error[row["reason_class"]]):
        _validate(CORPUS_DIR / row["file"])


def test_orientation_photos_come_out_upright() -> None:
    """Portrait_1..8 show the same upright picture once the EXIF orientation is applied."""
    reference: list[int] | None = None
    for number in range(1, 9):
        path = CORPUS_DIR / f"person_portrait_orient{number}.jpg"
        decoded = imaging.decode(path, "JPEG", 640)
        orientation = imaging.extract_metadata(decoded.exif).orientation
        assert orientation == number
        small, _ = imaging.make_thumbnails(decoded.pixels, orientation, 160, 640, 85)
        with Image.open(io.BytesIO(small.data)) as opened:
            pixels = list(opened.convert("L").resize((8, 12)).get_flattened_data())
        if reference is None:
            reference = pixels
            continue
        mean_difference = sum(abs(a - b) for a, b in zip(pixels, reference, strict=True)) / len(pixels)
        assert mean_difference < 12, f"orientation {number} differs from orientation 1 by {mean_difference:.1f}"
