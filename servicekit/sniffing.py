"""What image format a body holds, judged by its leading bytes alone (never by a name or a declared type)."""

from __future__ import annotations

SNIFF_BYTES = 32
"""Enough leading bytes for every signature below."""
ACCEPTED_SIGNATURES: tuple[tuple[bytes, str], ...] = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"))
_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "PSD"),
    (b"%PDF", "PDF"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
)


def sniff_format(head: bytes) -> str | None:
    """``"JPEG"`` or ``"PNG"`` judged by the leading bytes alone, else None."""
    return next((name for signature, name in ACCEPTED_SIGNATURES if head.startswith(signature)), None)


def describe_unsupported(head: bytes) -> str:
    """A name for what the leading bytes look like, for error messages."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "AVIF" if brand.startswith(b"avi") else "HEIC/HEIF" if brand.startswith(b"he") else "ISO media"
    for signature, name in _OTHER_SIGNATURES:
        if head.startswith(signature):
            return name
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<svg", b"<?xml")):
        return "SVG/XML"
    if stripped.startswith((b"<!doctype", b"<html")):
        return "HTML"
    return "an unknown format"
