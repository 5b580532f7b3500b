"""Read endpoints: list and paging, details, original, thumbnails, delete, retry, stats, health, docs."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import time
from typing import Any
from unittest.mock import ANY
from urllib.parse import unquote

import pytest
from litestar.testing import AsyncTestClient
from PIL import Image

from tests.conftest import wait_for_status
from tests.support import CORPUS_DIR, FAKE_INFERENCE_URL, FakeInference, make_image_bytes, problem_of, upload


@pytest.mark.gateway_settings(workers=0)
async def test_list_is_newest_first_and_pages_with_a_cursor(client: AsyncTestClient[Any]) -> None:
    ids = [await upload(client, name=f"{number}.jpg") for number in range(7)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/images", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


@pytest.mark.gateway_settings(workers=0)
async def test_list_filters_by_status(client: AsyncTestClient[Any]) -> None:
    await upload(client)
    assert len((await client.get("/api/images", params={"status": "pending"})).json()["items"]) == 1
    assert (await client.get("/api/images", params={"status": "completed"})).json()["items"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": "ten"},
        {"status": "done"},
        {"cursor": "!!!"},
        {"cursor": "bm9wZQ"},
        {"cursor": "=="},  # the old published pattern admitted these (schemathesis ST202)
        {"cursor": "j"},
        {"cursor": "0" * 45},
        {"cursor": "0" * 47},
        {"cursor": "A" * 46},
    ],
)
@pytest.mark.gateway_settings(workers=0)
async def test_invalid_list_query_is_400(client: AsyncTestClient[Any], params: dict[str, Any]) -> None:
    response = await client.get("/api/images", params=params)
    assert response.status_code == 400
    problem_of(response)


@pytest.mark.parametrize("image_id", ["0" * 32, "not-an-id", "../../etc/passwd", "A" * 32])
@pytest.mark.parametrize("suffix", ["", "/original", "/thumbnails/small"])
async def test_unknown_or_malformed_id_is_404(client: AsyncTestClient[Any], image_id: str, suffix: str) -> None:
    response = await client.get(f"/api/images/{image_id}{suffix}")
    assert response.status_code == 404
    problem_of(response)


async def test_completed_image_details_thumbnails_and_caption(
    client: AsyncTestClient[Any], fake_inference: FakeInference
) -> None:
    path = CORPUS_DIR / "landscape_waterfall_orient6.jpg"
    data = path.read_bytes() if path.exists() else make_image_bytes((120, 180))
    image_id = await upload(client, data, "waterfall.jpg")
    details = await wait_for_status(client, image_id)
    assert details["status"] == "completed", details
    assert details["caption"]["status"] == "completed"
    assert details["caption"]["text"].startswith("a fake caption")
    # an inference service whose captions do not name revision and precision: its /v1/model does
    assert details["caption"]["model"] == {"id": "fake-blip", "revision": None}
    assert details["caption"]["precision"] == "int8"
    assert details["caption"]["recaption"] is None
    assert details["error"] is None
    assert set(details["stages_ms"]) == {"decode", "metadata", "thumbnails", "caption"}
    assert all(value is not None and value >= 0 for value in details["stages_ms"].values())
    assert details["processing_ms"] > 0
    assert details["started_at"].endswith("Z")
    assert details["completed_at"].endswith("Z")
    metadata = details["metadata"]
    assert metadata["sha256"] == hashlib.sha256(data).hexdigest()
    assert metadata["file_datetime"]
    medium = details["thumbnails"]["medium"]
    assert max(medium["width"], medium["height"]) <= 640

    # the gateway sent the medium thumbnail (a JPEG, not the original) to the inference service
    sent = fake_inference.caption_requests[-1]
    assert sent.headers["content-type"] == "image/jpeg"
    assert len(sent.content) < len(data) or len(data) < 50_000

    jpeg = await client.get(f"/api/images/{image_id}/thumbnails/small")
    assert jpeg.status_code == 200
    assert jpeg.headers["content-type"] == "image/jpeg"
    assert unquote(jpeg.headers["x-caption"]) == details["caption"]["text"]
    assert jpeg.headers["vary"] == "Accept"
    assert "max-age" in jpeg.headers["cache-control"]
    with Image.open(io.BytesIO(jpeg.content)) as thumbnail:
        assert thumbnail.format == "JPEG"
        assert max(thumbnail.size) <= 160
        assert (thumbnail.width, thumbnail.height) == (
            details["thumbnails"]["small"]["width"],
            details["thumbnails"]["small"]["height"],
        )

    as_json = await client.get(f"/api/images/{image_id}/thumbnails/medium", headers={"Accept": "application/json"})
    assert as_json.json() == {
        "id": image_id,
        "size": "medium",
        "url": f"/api/images/{image_id}/thumbnails/medium",
        "width": medium["width"],
        "height": medium["height"],
        "caption": details["caption"]["text"],
    }
    assert as_json.headers["etag"] != jpeg.headers["etag"]

    cached = await client.get(
        f"/api/images/{image_id}/thumbnails/small", headers={"If-None-Match": jpeg.headers["etag"]}
    )
    assert cached.status_code == 304

    original = await client.get(f"/api/images/{image_id}/original")
    assert original.content == data
    assert original.headers["content-type"] == "image/jpeg"

    listed = (await client.get("/api/images")).json()["items"][0]
    assert listed["caption"] == details["caption"]["text"]


async def test_thumbnails_are_served_while_the_caption_is_still_pending(
    client: AsyncTestClient[Any], fake_inference: FakeInference
) -> None:
    fake_inference.delay_s = 30  # the caption stays on its way for the whole test
    image_id = await upload(client)
    deadline = time.monotonic() + 20
    while (await client.get(f"/api/images/{image_id}")).json()["thumbnails"]["small"] is None:
        assert time.monotonic() < deadline, "thumbnails waited for the caption"
        await asyncio.sleep(0.05)
    details = (await client.get(f"/api/images/{image_id}")).json()
    assert details["status"] == "processing"
    assert details["caption"]["status"] == "pending"
    assert details["caption"]["text"] is None

    jpeg = await client.get(f"/api/images/{image_id}/thumbnails/small")
    assert jpeg.status_code == 200
    assert "x-caption" not in jpeg.headers, "no caption exists yet"
    assert jpeg.headers["cache-control"] == "no-cache", "the caption may still change"
    as_json = await client.get(f"/api/images/{image_id}/thumbnails/small", headers={"Accept": "application/json"})
    assert as_json.json()["caption"] is None
    assert as_json.headers["cache-control"] == "no-cache"


@pytest.mark.gateway_settings(workers=0)
async def test_thumbnail_before_it_exists_is_409_with_retry_after(client: AsyncTestClient[Any]) -> None:
    image_id = await upload(client)
    response = await client.get(f"/api/images/{image_id}/thumbnails/small")
    assert response.status_code == 409
    assert int(response.headers["retry-after"]) >= 1
    problem_of(response)


async def test_unknown_thumbnail_size_is_404(client: AsyncTestClient[Any]) -> None:
    image_id = await upload(client)
    response = await client.get(f"/api/images/{image_id}/thumbnails/huge")
    assert response.status_code == 404
    assert "small or medium" in problem_of(response)["detail"]


async def test_corrupt_upload_is_accepted_then_fails_with_a_sentence(client: AsyncTestClient[Any]) -> None:
    noise = Image.effect_noise((300, 200), 90).convert("RGB")
    buffer = io.BytesIO()
    noise.save(buffer, "JPEG")
    truncated = buffer.getvalue()[: len(buffer.getvalue()) // 2]
    image_id = await upload(client, truncated)
    details = await wait_for_status(client, image_id)
    assert details["status"] == "failed"
    assert "truncated" in details["error"] or "corrupt" in details["error"]
    assert details["thumbnails"] == {"small": None, "medium": None}
    assert details["caption"]["text"] is None
    response = await client.get(f"/api/images/{image_id}/thumbnails/small")
    assert response.status_code == 404
    assert "failed before" in problem_of(response)["detail"]


async def test_delete_removes_the_row_and_every_file(client: AsyncTestClient[Any], settings: Any) -> None:
    image_id = await upload(client)
    await wait_for_status(client, image_id)
    assert any(image_id in str(path) for path in settings.data_dir.rglob("*") if path.is_file())
    response = await client.delete(f"/api/images/{image_id}")
    assert response.status_code == 204
    assert (await client.get(f"/api/images/{image_id}")).status_code == 404
    assert not any(image_id in str(path) for path in settings.data_dir.rglob("*"))
    assert (await client.delete(f"/api/images/{image_id}")).status_code == 404


async def test_delete_while_a_worker_has_it_leaves_nothing_behind(
    client: AsyncTestClient[Any], fake_inference: FakeInference, settings: Any
) -> None:
    fake_inference.delay_s = 2.0  # a processing window that polling cannot miss on a slow machine
    image_id = await upload(client)
    await wait_for_status(client, image_id, statuses=("processing",))
    assert (await client.delete(f"/api/images/{image_id}")).status_code == 204
    deadline = time.monotonic() + 20
    while "gateway_images_in_flight 0.0" not in (await client.get("/metrics")).text:
        assert time.monotonic() < deadline, "the worker never let go of the deleted image"
        await asyncio.sleep(0.05)
    assert not any(image_id in str(path) for path in settings.data_dir.rglob("*"))
    assert (await client.get(f"/api/images/{image_id}")).status_code == 404


async def test_retry_is_409_unless_failed(client: AsyncTestClient[Any], fake_inference: FakeInference) -> None:
    image_id = await upload(client)
    await wait_for_status(client, image_id)
    response = await client.post(f"/api/images/{image_id}/retry")
    assert response.status_code == 409
    assert "completed" in problem_of(response)["detail"]


async def test_stats_have_exactly_the_documented_shape(client: AsyncTestClient[Any]) -> None:
    await wait_for_status(client, await upload(client))
    await client.post("/api/images", files={"image": ("a.gif", b"GIF89a" + bytes(10), "image/gif")})
    stats = (await client.get("/api/stats")).json()
    assert set(stats) == {
        "total", "by_status", "success_rate", "failure_rate", "processing_ms", "end_to_end_ms", "stage_ms_avg",
        "captions", "rejected", "recaption", "uptime_s", "uptime_scope",
    }  # fmt: skip
    assert stats["total"] == 1
    assert stats["by_status"] == {"pending": 0, "processing": 0, "completed": 1, "failed": 0}
    assert stats["success_rate"] == 1.0
    assert stats["failure_rate"] == 0.0
    assert set(stats["processing_ms"]) == {"avg", "p50", "p95", "max"}
    assert stats["end_to_end_ms"]["max"] >= stats["processing_ms"]["max"] > 0
    assert stats["uptime_scope"] == "process"
    assert set(stats["stage_ms_avg"]) == {"decode", "metadata", "thumbnails", "caption"}
    assert stats["captions"] == {"pending": 0, "completed": 1, "failed": 0, "unavailable": 0}
    assert stats["rejected"] == {"too_large": 0, "unsupported_format": 1, "unreadable": 0, "bad_request": 0}
    assert stats["recaption"] == {"queued": 0, "done": 0, "failed": 0}
    assert stats["uptime_s"] >= 0


@pytest.mark.gateway_settings(workers=0)
async def test_stats_rates_are_null_when_nothing_finished(client: AsyncTestClient[Any]) -> None:
    stats = (await client.get("/api/stats")).json()
    assert stats["success_rate"] is None
    assert stats["failure_rate"] is None
    assert stats["processing_ms"]["p50"] is None


async def test_health_relays_inference_readiness(client: AsyncTestClient[Any], fake_inference: FakeInference) -> None:
    assert (await client.get("/health/live")).status_code == 200
    ready = (await client.get("/health/ready")).json()
    assert ready == {
        "status": "ready",
        "database": "ok",
        "inference": {
            "ready": True,
            "detail": ready["inference"]["detail"],
            "replicas": [{"url": FAKE_INFERENCE_URL, "state": "ready", "in_flight": 0, "detail": ANY}],
        },
        "storage": "ok",
    }
    fake_inference.up = False
    down = await client.get("/health/ready")
    assert down.status_code == 200
    assert down.json()["inference"]["ready"] is False
    assert "cannot be reached" in down.json()["inference"]["detail"]
    assert down.json()["inference"]["replicas"][0]["state"] == "unknown"


async def test_metrics_are_prometheus_text(client: AsyncTestClient[Any]) -> None:
    await wait_for_status(client, await upload(client))
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "gateway_uploads_accepted_total 1.0" in response.text
    assert 'gateway_stage_duration_seconds_count{outcome="completed",stage="thumbnails"} 1.0' in response.text


async def test_openapi_schema_and_docs_are_served(client: AsyncTestClient[Any]) -> None:
    schema = (await client.get("/docs/openapi.json")).json()
    paths = set(schema["paths"])
    assert {"/api/images", "/api/images/{image_id}", "/api/stats", "/health/ready"} <= paths
    assert (await client.get("/docs")).status_code == 200


@pytest.mark.gateway_settings(workers=0)
async def test_every_cursor_the_schema_admits_is_a_page(client: AsyncTestClient[Any]) -> None:
    """The published pattern is exactly what the server takes: a real cursor matches it, a forged one is a page."""
    for _ in range(3):
        await upload(client)
    schema = (await client.get("/docs/openapi.json")).json()
    declared = {parameter["name"]: parameter for parameter in schema["paths"]["/api/images"]["get"]["parameters"]}
    pattern = declared["cursor"]["schema"]["pattern"]
    first = (await client.get("/api/images", params={"limit": 1})).json()
    assert re.fullmatch(pattern, first["next_cursor"])
    for forged in ["", "0" * 46, "f" * 46, "0123456789abcdef" * 2 + "0" * 14]:
        assert re.fullmatch(pattern, forged)
        response = await client.get("/api/images", params={"cursor": forged})
        assert response.status_code == 200, (forged, response.text)
