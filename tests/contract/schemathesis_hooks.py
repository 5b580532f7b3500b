"""What JSON Schema cannot say, told to Schemathesis' generator rather than forgiven by its checks.

Which bytes are a JPEG or a PNG: both services judge an image by its bytes (API.md). Schemathesis
fills a ``format: binary`` value with random bytes or with sample files of other formats (GIF, WebP,
PDF, ZIP), which the services rightly refuse with 415/422. These strategies make the positive data
sent as ``image/jpeg`` or ``image/png`` (the gateway's ``image`` part declares both in its encoding,
the inference body is one of them) real files of that format, so every schema-valid request must be
accepted: the run needs no list of tolerated statuses. Negative data is left alone.

An ``Idempotency-Key`` is valid on its own, but the same key with other file bytes is a client
mistake (422, API.md) the schema cannot describe, and a fuzzer draws the same few short keys for
every upload. Before each call, a valid key gets the sha256 of the file appended, as API.md
suggests clients build their keys: the same key with the same bytes still replays the first 202;
the 422 for other bytes is pinned down by tests/integration.

The inference service's prompt and ``max_new_tokens`` share the decoder's positions: a prompt of
N tokens leaves ``max_new_tokens_limit - N`` new tokens, and beyond that the answer is a 422 (API.md)
that no schema can state, since it counts tokens. The schema's maximum is the served model's limit;
positive cases whose prompt might not fit next to their ``max_new_tokens`` (a token is at least
one character) are not sent. tests/inference/test_model_limits.py pins those 422s down.

Imported by ``schemathesis_run``; the same hooks for the command line, against running services:
``SCHEMATHESIS_HOOKS=tests.contract.schemathesis_hooks st run http://localhost:8000/docs/openapi.json``.
"""

from __future__ import annotations

import hashlib
import io
import re
from typing import Any

import schemathesis
from hypothesis import strategies as st
from PIL import Image

from contracts.captions import CAPTIONS_PATH, MAX_NEW_TOKENS_LIMIT

MAX_SIDE_PX = 48
MODES = {"JPEG": ("RGB", "L"), "PNG": ("RGB", "RGBA", "L", "LA", "P")}
IDEMPOTENCY_KEY = "idempotency-key"
VALID_KEY = re.compile(r"[\x21\x23-\x7e]{1,255}")  # the pattern the gateway's schema declares
KEY_MAX_CHARS = 255
DIGEST_CHARS = 16


@st.composite
def image_files(draw: st.DrawFn, image_format: str) -> bytes:
    """A small one-colour image in one of the modes the format stores, encoded as ``image_format``."""
    mode = draw(st.sampled_from(MODES[image_format]))
    size = (draw(st.integers(1, MAX_SIDE_PX)), draw(st.integers(1, MAX_SIDE_PX)))
    bands = Image.getmodebands(mode)
    colour = tuple(draw(st.lists(st.integers(0, 255), min_size=bands, max_size=bands)))
    buffer = io.BytesIO()
    Image.new(mode, size, colour[0] if bands == 1 else colour).save(buffer, image_format)
    return buffer.getvalue()


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """A valid ``Idempotency-Key`` of an upload becomes ``<key>-<sha256 of the file>``, still valid."""
    headers, body = case.headers or {}, case.body
    name = next((header for header in headers if header.lower() == IDEMPOTENCY_KEY), None)
    image = body.get("image") if isinstance(body, dict) else None
    data = getattr(image, "data", image)
    if name is None or not isinstance(data, bytes) or not isinstance(headers[name], str):
        return
    if VALID_KEY.fullmatch(headers[name]) is None:
        return  # an invalid key stays as drawn: the 400 it earns is checked
    digest = hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]
    headers[name] = f"{headers[name][: KEY_MAX_CHARS - DIGEST_CHARS - 1]}-{digest}"


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    """Positive captions requests only where the prompt surely fits next to ``max_new_tokens``."""
    meta = case.meta
    if case.operation.path != CAPTIONS_PATH or meta is None or not meta.generation.mode.is_positive:
        return True
    query = case.query or {}
    prompt, asked = query.get("prompt"), query.get("max_new_tokens")
    if not isinstance(prompt, str) or not prompt:
        return True
    return len(prompt) + (asked if isinstance(asked, int) else 1) <= _max_new_tokens_bound(case.operation)


def _max_new_tokens_bound(operation: Any) -> int:
    """The ``maximum`` the served schema gives ``max_new_tokens``: the model's limit once it is loaded."""
    for parameter in operation.definition.raw.get("parameters", []):
        if parameter.get("name") == "max_new_tokens":
            return int(parameter["schema"]["maximum"])
    return MAX_NEW_TOKENS_LIMIT


def register_image_media_types() -> None:
    schemathesis.openapi.media_type("image/jpeg", image_files("JPEG"))
    schemathesis.openapi.media_type("image/png", image_files("PNG"))


register_image_media_types()
