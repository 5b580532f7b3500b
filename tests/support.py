"""Test helpers: images built in memory, the corpus manifest, a fake inference service."""

from __future__ import annotations

import asyncio
import csv
import inspect
import io
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import respx
from PIL import Image, ImageChops, ImageOps, ImageStat
from prometheus_client.parser import text_string_to_metric_families

from contracts.captions import CAPTIONS_PATH, READY_PATH, CaptionResponse, CaptionTimings, ReadinessResponse
from contracts.model_info import MODEL_INFO_PATH, BatchingInfo, ModelInfo
from contracts.problem import PROBLEM_MEDIA_TYPE, Problem

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = REPO_ROOT / "tests" / "data" / "corpus"
IMAGES_DIR = REPO_ROOT / "images"
FAKE_INFERENCE_URL = "http://inference.test:3000"
FINAL_STATUSES = ("completed", "failed")
# A thumbnail turned or flipped the wrong way differs from the upright picture by 30-100 grey
# levels on average; a right one by 2-7 (JPEG and resampling).
UPRIGHT_MAX_MEAN_DIFFERENCE = 12.0


def corpus_rows() -> list[dict[str, str]]:
    """The rows of tests/data/corpus/MANIFEST.tsv (the corpus ships with the repository)."""
    with (CORPUS_DIR / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def make_image_bytes(
    size: tuple[int, int] = (64, 48),
    mode: str = "RGB",
    image_format: str = "JPEG",
    color: Any = (200, 30, 30),
    **save_options: Any,
) -> bytes:
    image = Image.new(mode, size, color)
    if mode == "RGB":  # a little structure so that orientation can be checked
        image.paste((20, 20, 220), (0, 0, max(1, size[0] // 4), max(1, size[1] // 4)))
    buffer = io.BytesIO()
    image.save(buffer, image_format, **save_options)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` with (almost) no pixel data: a bomb header."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


def caption_body(
    text: str, model: str = "fake-blip", revision: str | None = None, precision: str | None = None
) -> dict[str, Any]:
    """A caption response exactly in the shape of ``contracts.captions.CaptionResponse``."""
    return CaptionResponse(
        caption=text,
        model=model,
        revision=revision,
        precision=precision,
        tokens=len(text.split()),
        timings_ms=CaptionTimings(preprocess=1.0, encode=2.0, decode=3.0, total=6.0),
    ).model_dump()


def model_info_body(
    max_new_tokens_limit: int | None = 128, revision: str | None = None, precision: str = "int8"
) -> dict[str, Any]:
    """A ``GET /v1/model`` answer exactly in the shape of ``contracts.model_info.ModelInfo``."""
    return ModelInfo(
        name="fake-blip",
        revision=revision,
        precision=precision,
        execution_providers=["CPUExecutionProvider"],
        batching=BatchingInfo(max_batch=1, max_wait_ms=0, queue_size=1),
        is_test_model=True,
        ready=True,
        max_new_tokens_limit=max_new_tokens_limit,
    ).model_dump()


def problem_body(status: int, detail: str) -> dict[str, Any]:
    return Problem(title="error", status=status, detail=detail).model_dump(exclude_none=True)


@dataclass
class FakeInference:
    """The inference service faked with respx; switch it ``up``/``down`` or script answers."""

    up: bool = True
    delay_s: float = 0.0
    scripted: list[httpx.Response] = field(default_factory=list)
    caption_requests: list[httpx.Request] = field(default_factory=list)
    max_new_tokens_limit: int | None = 128
    revision: str | None = None  # of the fake model; change it to switch models
    caption_names_revision: bool = False  # captions carry revision and precision (else only /v1/model says them)
    router: respx.MockRouter = field(init=False)

    def __post_init__(self) -> None:
        self._counter = itertools.count(1)
        self.router = respx.MockRouter(base_url=FAKE_INFERENCE_URL, assert_all_called=False)
        self.router.post(CAPTIONS_PATH).mock(side_effect=self._caption)
        self.router.get(READY_PATH).mock(side_effect=self._ready)
        self.router.get(MODEL_INFO_PATH).mock(side_effect=self._model)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.router.async_handler)

    async def _caption(self, request: httpx.Request) -> httpx.Response:
        self.caption_requests.append(request)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if not self.up:
            raise httpx.ConnectError("connection refused", request=request)
        if self.scripted:
            return self.scripted.pop(0)
        text = f"a fake caption number {next(self._counter)}"
        if self.caption_names_revision:
            return httpx.Response(200, json=caption_body(text, revision=self.revision, precision="int8"))
        return httpx.Response(200, json=caption_body(text))

    def _ready(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json=ReadinessResponse(status="ready", state="ready").model_dump())

    def _model(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json=model_info_body(self.max_new_tokens_limit, revision=self.revision))


def problem_of(response: httpx.Response) -> dict[str, Any]:
    """The problem+json body, after checking the media type and the RFC 9457 members."""
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE), response.text
    body: dict[str, Any] = json.loads(response.content)
    assert body["status"] == response.status_code
    assert body["title"]
    assert body["detail"]
    assert body["type"]
    return body


def difference_from_upright(thumbnail_jpeg: bytes, original: Path) -> float:
    """Mean absolute difference (0..255) between a thumbnail and Pillow's exif_transpose of the original."""
    with Image.open(io.BytesIO(thumbnail_jpeg)) as opened:
        thumbnail = opened.convert("RGB")
    with Image.open(original) as source:
        reference = ImageOps.exif_transpose(source).convert("RGB")
    reference.thumbnail(thumbnail.size)
    reference = reference.resize(thumbnail.size)
    return float(sum(ImageStat.Stat(ImageChops.difference(thumbnail, reference)).mean) / 3)


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], timeout_s: float = 10.0, what: str = "the condition"
) -> None:
    """Poll ``condition`` (plain or async) until it holds; fail saying ``what`` did not happen in time."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:g} s"
        await asyncio.sleep(0.02)


def eventually_blocking(condition: Callable[[], bool], timeout_s: float = 10.0, what: str = "the condition") -> None:
    """``eventually`` for tests that drive real processes from plain (not async) code."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:g} s"
        time.sleep(0.05)


def metric_value(exposition: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text exposition (``GET /metrics``), 0.0 while the series is absent."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


class PostsFiles(Protocol):
    """What uploads need of a client: Litestar's AsyncTestClient and httpx.AsyncClient both fit."""

    async def post(self, url: str, *, files: Any = ..., headers: Any = ...) -> httpx.Response: ...


async def upload(
    client: PostsFiles, data: bytes | None = None, name: str = "photo.jpg", headers: dict[str, str] | None = None
) -> str:
    """POST one JPEG (a small generated photo unless ``data``) and return the accepted image's id."""
    files = {"image": (name, make_image_bytes() if data is None else data, "image/jpeg")}
    response = await client.post("/api/images", files=files, headers=headers or {})
    assert response.status_code == 202, response.text
    image_id: str = response.json()["id"]
    return image_id
