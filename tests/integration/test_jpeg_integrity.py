"""Through the whole app: a JPEG cut short ends `failed` with a sentence; a whole one with grey completes."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import wait_for_status
from tests.jpeg_samples import GREY_CASES, JPEG_KINDS, cut, encode, photo, with_jfif_revision, with_stray_bytes
from tests.support import upload


@pytest.mark.parametrize(("kind", "kept"), [("progressive", 0.8), ("baseline-420", 0.995), ("baseline-444", 0.3)])
async def test_a_jpeg_cut_short_with_an_end_marker_ends_failed_with_a_sentence(
    client: AsyncTestClient[Any], kind: str, kept: float
) -> None:
    data = cut(encode(photo(), **JPEG_KINDS[kind]), kept, end_marker=True)
    details = await wait_for_status(client, await upload(client, data))
    assert details["status"] == "failed"
    assert "ends early" in details["error"]
    assert details["error"].endswith(".")
    assert details["thumbnails"] == {"small": None, "medium": None}


@pytest.mark.parametrize("case", ["letterbox-bar", "chart-grey-lower-right"])
async def test_a_whole_jpeg_with_a_grey_area_completes(client: AsyncTestClient[Any], case: str) -> None:
    picture, save_options = GREY_CASES[case]
    details = await wait_for_status(client, await upload(client, encode(picture, **save_options)))
    assert details["status"] == "completed", details["error"]


async def test_a_jpeg_with_stray_bytes_between_segments_completes(client: AsyncTestClient[Any]) -> None:
    data = with_stray_bytes(encode(photo()), b"\xff\xc4")
    details = await wait_for_status(client, await upload(client, data))
    assert details["status"] == "completed", details["error"]
    assert details["thumbnails"]["medium"]["width"] == 640


async def test_a_jpeg_with_an_unknown_jfif_revision_completes_and_a_cut_one_fails(client: AsyncTestClient[Any]) -> None:
    data = with_jfif_revision(encode(photo()))  # one scan: no scan header shows the cut
    whole = await wait_for_status(client, await upload(client, data))
    assert whole["status"] == "completed", whole["error"]
    cut_short = await wait_for_status(client, await upload(client, cut(data, 0.6, end_marker=True)))
    assert cut_short["status"] == "failed"
    assert "ends early" in cut_short["error"]
