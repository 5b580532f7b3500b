"""The sample photos in images/: a handful of JPEG and PNG files, each with its source and licence."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.deploy.tools import ROOT

IMAGES = ROOT / "images"
ATTRIBUTION = IMAGES / "ATTRIBUTION.md"


def sample_images() -> list[Path]:
    return sorted(path for path in IMAGES.iterdir() if path.is_file() and path != ATTRIBUTION)


def test_images_folder_holds_eight_to_twelve_jpeg_or_png_photos() -> None:
    images = sample_images()
    assert 8 <= len(images) <= 12
    magic = {path.name: path.read_bytes()[:8] for path in images}
    assert all(head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")) for head in magic.values()), magic
    assert any(head.startswith(b"\x89PNG") for head in magic.values())
    assert any(" " in path.name for path in images), "one file name must contain a space"


def test_attribution_names_every_image_with_its_sha256_and_licence() -> None:
    attribution = ATTRIBUTION.read_text(encoding="utf-8")
    for path in sample_images():
        assert f"`{path.name}`" in attribution, path.name
        assert hashlib.sha256(path.read_bytes()).hexdigest() in attribution, path.name
    assert "CC BY-SA 4.0" in attribution
    assert "Attribution-ShareAlike 4.0 International" in attribution
