"""Template helpers: the gallery's own URLs and how numbers are shown to people."""

from __future__ import annotations

from urllib.parse import urlencode

KIB = 1024
MISSING = "\N{EN DASH}"


def gallery_url(path: str = "/", status: str | None = None, cursor: str | None = None, q: str | None = None) -> str:
    """``path`` with the search, the filter and the cursor as a query string (empty values left out)."""
    pairs = (("q", q), ("status", status), ("cursor", cursor))
    query = urlencode({key: value for key, value in pairs if value})
    return f"{path}?{query}" if query else path


def show_ms(value: float | None) -> str:
    if value is None:
        return MISSING
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def show_rate(value: float | None) -> str:
    return MISSING if value is None else f"{value * 100:.1f} %"


def show_bytes(value: int) -> str:
    if value < KIB:
        return f"{value} B"
    if value < KIB * KIB:
        return f"{value / KIB:.1f} KiB"
    return f"{value / KIB / KIB:.1f} MiB"


TEMPLATE_GLOBALS = {"gallery_url": gallery_url, "show_ms": show_ms, "show_rate": show_rate, "show_bytes": show_bytes}
