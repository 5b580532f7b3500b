"""The inference service's HTTP behaviour: statuses, readiness, batching, a full queue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog.contextvars
import structlog.testing
from litestar.testing import AsyncTestClient
from PIL import Image

from contracts.captions import MAX_NEW_TOKENS_LIMIT, CaptionResponse
from inference.app import create_app
from inference.captioner import Captioner
from inference.settings import InferenceSettings
from tests.inference.fakes import GatedFakeCaptioner, SlowFakeCaptioner
from tests.support import make_image_bytes, png_header_only, problem_of


def settings_for(tmp_path: Path, **overrides: Any) -> InferenceSettings:
    values: dict[str, Any] = {"model_dir": tmp_path / "models", "log_dir": tmp_path / "logs", "threads": 1}
    values.update(overrides)
    return InferenceSettings(**values)


async def wait_until_settled(client: AsyncTestClient[Any], timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = (await client.get("/health/ready")).json()
        if body["status"] == "ready" or body["detail"] != "The model is loading.":
            return body
        assert time.monotonic() < deadline, "the model never finished loading"
        await asyncio.sleep(0.05)


@pytest.fixture
async def fake_client(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[AsyncTestClient[Any]]:
    overrides = getattr(request, "param", {})
    captioner: Captioner = overrides.pop("captioner", SlowFakeCaptioner())
    app = create_app(settings_for(tmp_path, **overrides), captioner=captioner)
    async with AsyncTestClient(app=app) as client:
        await wait_until_settled(client)
        yield client


async def post_image(client: AsyncTestClient[Any], data: bytes, **params: Any) -> Any:
    return await client.post("/v1/captions", content=data, headers={"Content-Type": "image/jpeg"}, params=params)


async def test_caption_answers_the_contract_shape(fake_client: AsyncTestClient[Any]) -> None:
    response = await post_image(fake_client, make_image_bytes((30, 20)), prompt="a photo of")
    assert response.status_code == 200
    body = CaptionResponse.model_validate(response.json())
    assert body.caption == "a photo of fake 30x20"
    assert body.model == "fake"
    assert body.timings_ms.total >= body.timings_ms.encode


async def test_exif_orientation_is_applied_before_the_model(fake_client: AsyncTestClient[Any]) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    response = await post_image(fake_client, make_image_bytes((30, 20), exif=exif.tobytes()))
    assert response.json()["caption"] == "fake 20x30"


@pytest.mark.parametrize(
    ("data", "params", "status"),
    [
        (b"GIF89a" + bytes(20), {}, 415),
        (b"hello", {}, 415),
        (b"", {}, 400),
        (b"\xff\xd8\xff<html>", {}, 422),
        (png_header_only(20_000, 20_000), {}, 413),
        (make_image_bytes(), {"max_new_tokens": 0}, 400),
        (make_image_bytes(), {"max_new_tokens": 500}, 400),
        (make_image_bytes(), {"prompt": "x" * 501}, 400),
    ],
    ids=[
        "gif",
        "text",
        "empty",
        "html-behind-jpeg-magic",
        "pixel-bomb",
        "zero-tokens",
        "too-many-tokens",
        "long-prompt",
    ],
)
async def test_bad_requests_are_problems(
    fake_client: AsyncTestClient[Any], data: bytes, params: dict[str, Any], status: int
) -> None:
    response = await post_image(fake_client, data, **params)
    assert response.status_code == status
    problem_of(response)


@pytest.mark.parametrize("fake_client", [{"max_body_bytes": 1000}], indirect=True)
async def test_oversize_body_is_413(fake_client: AsyncTestClient[Any]) -> None:
    response = await post_image(fake_client, make_image_bytes((300, 300), quality=95) + bytes(2000))
    assert response.status_code == 413
    problem_of(response)


async def test_a_full_queue_is_503_with_retry_after_over_http(tmp_path: Path) -> None:
    # In this event loop (not a test client's portal), so the requests really are concurrent.
    app = create_app(settings_for(tmp_path, queue_size=1), captioner=SlowFakeCaptioner(delay_s=0.3))
    transport = httpx.ASGITransport(app=app)
    async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://inference.test") as client:
        deadline = time.monotonic() + 30
        while (await client.get("/health/ready")).status_code != 200:
            assert time.monotonic() < deadline, "the fake model never got ready"
            await asyncio.sleep(0.02)
        responses = await asyncio.gather(
            *(client.post("/v1/captions", content=make_image_bytes(), headers={"Content-Type": "image/jpeg"})
              for _ in range(6))
        )  # fmt: skip
    statuses = sorted(response.status_code for response in responses)
    assert 200 in statuses
    refused = [response for response in responses if response.status_code == 503]
    assert refused, statuses
    for response in refused:
        assert int(response.headers["retry-after"]) >= 1
        assert "queued" in problem_of(response)["detail"]


async def test_model_info_says_what_is_served(fake_client: AsyncTestClient[Any]) -> None:
    info = (await fake_client.get("/v1/model")).json()
    assert info["name"] == "fake"
    assert info["is_test_model"] is True
    assert info["batching"] == {"max_batch": 1, "max_wait_ms": 5.0, "queue_size": 32}
    assert info["ready"] is True


async def test_a_model_that_cannot_be_had_leaves_the_service_up_and_says_the_failure_is_final(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    app = create_app(settings_for(tmp_path, model="Salesforce/blip-image-captioning-large"))
    async with AsyncTestClient(app=app) as client:
        readiness = await wait_until_settled(client, timeout_s=120)
        assert (readiness["status"], readiness["state"]) == ("not_ready", "failed")
        assert "Hugging Face Hub is unreachable" in readiness["detail"]
        assert "INFERENCE_MODEL=tiny-random" in readiness["detail"]
        ready_response = await client.get("/health/ready")
        assert ready_response.status_code == 503
        assert "retry-after" not in ready_response.headers, "retrying soon will not help"
        response = await post_image(client, make_image_bytes())
        assert response.status_code == 503
        assert "retry-after" not in response.headers
        problem = problem_of(response)
        assert problem["type"] == "urn:image-pipeline:problem:model-load-failed"
        assert problem["state"] == "failed"
        assert "No model can be served" in problem["detail"]
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get("/v1/model")).json()["ready"] is False


async def test_a_loading_model_is_503_with_a_short_retry_after_and_state_loading(tmp_path: Path) -> None:
    captioner = GatedFakeCaptioner()
    app = create_app(settings_for(tmp_path), captioner=captioner)
    async with AsyncTestClient(app=app) as client:
        try:
            ready_response = await client.get("/health/ready")
            assert ready_response.status_code == 503
            assert ready_response.json()["state"] == "loading"
            assert ready_response.headers["retry-after"] == "5"
            response = await post_image(client, make_image_bytes())
            assert (response.status_code, response.headers["retry-after"]) == (503, "5")
            assert problem_of(response)["state"] == "loading"
        finally:
            captioner.gate.set()
        readiness = await wait_until_settled(client)
        assert (readiness["status"], readiness["state"]) == ("ready", "ready")


async def test_request_id_is_kept(fake_client: AsyncTestClient[Any]) -> None:
    response = await fake_client.get("/health/live", headers={"X-Request-ID": "trace-7"})
    assert response.headers["x-request-id"] == "trace-7"
    for method, path in (("GET", "/nowhere"), ("DELETE", "/v1/captions")):
        routing_error = await fake_client.request(method, path, headers={"X-Request-ID": "trace-8"})
        assert routing_error.status_code in (404, 405)
        assert routing_error.headers["x-request-id"] == "trace-8"


async def test_metrics_count_requests_by_status(fake_client: AsyncTestClient[Any]) -> None:
    await post_image(fake_client, make_image_bytes())
    await post_image(fake_client, b"GIF89a....")
    text = (await fake_client.get("/metrics")).text
    assert 'inference_requests_total{status="200"} 1.0' in text
    assert 'inference_requests_total{status="415"} 1.0' in text
    assert "inference_queue_depth" in text


async def test_every_caption_request_is_logged_with_the_callers_request_id(fake_client: AsyncTestClient[Any]) -> None:
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        served = await fake_client.post(
            "/v1/captions", content=make_image_bytes(), headers={"X-Request-ID": "trace-log-1"}
        )
        refused = await fake_client.post("/v1/captions", content=b"", headers={"X-Request-ID": "trace-log-2"})
    assert (served.status_code, refused.status_code) == (200, 400)
    by_request = {entry.get("request_id"): entry for entry in logs if entry.get("request_id", "").startswith("trace")}
    assert by_request["trace-log-1"]["event"] == "caption_served"
    assert by_request["trace-log-1"]["tokens"] == served.json()["tokens"]
    assert by_request["trace-log-2"]["event"] == "request_failed"
    assert by_request["trace-log-2"]["status"] == 400


async def test_openapi_declares_the_raw_image_body_and_every_problem(fake_client: AsyncTestClient[Any]) -> None:
    schema = (await fake_client.get("/docs/openapi.json")).json()
    captions = schema["paths"]["/v1/captions"]["post"]
    assert set(captions["requestBody"]["content"]) == {"image/jpeg", "image/png"}
    responses = captions["responses"]
    assert {"200", "400", "413", "415", "422", "503"} <= set(responses)
    for status in ("400", "413", "415", "422", "503"):
        assert set(responses[status]["content"]) == {"application/problem+json"}, status
    assert "Retry-After" in responses["503"]["headers"]
    assert "503" in schema["paths"]["/health/ready"]["get"]["responses"]


async def test_a_model_without_a_position_limit_keeps_the_api_bound_in_the_schema(
    fake_client: AsyncTestClient[Any],
) -> None:
    schema = (await fake_client.get("/docs/openapi.json")).json()
    declared = schema["paths"]["/v1/captions"]["post"]["parameters"]
    parameters = {parameter["name"]: parameter["schema"] for parameter in declared}
    assert parameters["max_new_tokens"]["maximum"] == MAX_NEW_TOKENS_LIMIT
