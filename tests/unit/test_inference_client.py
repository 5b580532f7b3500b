"""The inference client: what is retried, what is not, and how errors are named."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import respx

from contracts.captions import CAPTIONS_PATH
from contracts.problem import MODEL_LOAD_FAILED_SLUG, PROBLEM_TYPE_PREFIX
from gateway.errors import CaptionRejectedError, InferenceModelMissingError, InferenceUnavailableError
from gateway.replicas.client import InferenceClient, parse_retry_after
from gateway.settings import GatewaySettings
from tests.support import FAKE_INFERENCE_URL, caption_body, problem_body


def make_client(router: respx.MockRouter, **overrides: Any) -> InferenceClient:
    values: dict[str, Any] = {
        "inference_url": FAKE_INFERENCE_URL,
        "inference_attempts": 3,
        "inference_backoff_s": 0.01,
        "inference_backoff_max_s": 0.02,
    }
    values.update(overrides)
    return InferenceClient(GatewaySettings(**values), transport=httpx.MockTransport(router.async_handler))


@pytest.fixture
def router() -> respx.MockRouter:
    return respx.MockRouter(base_url=FAKE_INFERENCE_URL, assert_all_called=False)


async def test_caption_sends_jpeg_with_request_id(router: respx.MockRouter) -> None:
    route = router.post(CAPTIONS_PATH).respond(200, json=caption_body("a dog on a beach"))
    client = make_client(router)
    response = await client.caption(b"jpeg-bytes", "image/jpeg", "req-123")
    assert response.caption == "a dog on a beach"
    sent = route.calls.last.request
    assert sent.headers["content-type"] == "image/jpeg"
    assert sent.headers["x-request-id"] == "req-123"
    assert sent.content == b"jpeg-bytes"
    await client.aclose()


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_overload_and_server_errors_are_retried_then_succeed(router: respx.MockRouter, status: int) -> None:
    route = router.post(CAPTIONS_PATH)
    route.side_effect = [
        httpx.Response(status, json=problem_body(status, "busy")),
        httpx.Response(200, json=caption_body("finally")),
    ]
    client = make_client(router)
    assert (await client.caption(b"x", "image/jpeg", "r")).caption == "finally"
    assert route.call_count == 2


@pytest.mark.parametrize("status", [400, 404, 413, 415, 422])
async def test_other_client_errors_are_not_retried(router: respx.MockRouter, status: int) -> None:
    route = router.post(CAPTIONS_PATH).respond(status, json=problem_body(status, "cannot decode this image"))
    client = make_client(router)
    with pytest.raises(CaptionRejectedError, match="cannot decode this image"):
        await client.caption(b"x", "image/jpeg", "r")
    assert route.call_count == 1


async def test_connection_errors_spend_the_budget_and_name_the_cause(router: respx.MockRouter) -> None:
    route = router.post(CAPTIONS_PATH).mock(side_effect=httpx.ConnectError("refused"))
    client = make_client(router)
    with pytest.raises(InferenceUnavailableError, match=r"could not be reached.*gave up after 3 attempts"):
        await client.caption(b"x", "image/jpeg", "r")
    assert route.call_count == 3


async def test_timeouts_are_unavailable(router: respx.MockRouter) -> None:
    router.post(CAPTIONS_PATH).mock(side_effect=httpx.ReadTimeout("slow"))
    client = make_client(router, inference_attempts=1)
    with pytest.raises(InferenceUnavailableError, match="did not answer within"):
        await client.caption(b"x", "image/jpeg", "r")


async def test_retry_after_is_honoured(router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch) -> None:
    # The clock is the boundary: record what tenacity asks to sleep instead of waiting it out.
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def record_sleep(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", record_sleep)
    route = router.post(CAPTIONS_PATH)
    route.side_effect = [
        httpx.Response(503, headers={"Retry-After": "3"}, json=problem_body(503, "loading")),
        httpx.Response(200, json=caption_body("ok")),
    ]
    client = make_client(router)
    assert (await client.caption(b"x", "image/jpeg", "r")).caption == "ok"
    assert waits == [3.0], "the server's Retry-After, not the 0.01-0.02 s backoff"


async def test_a_body_that_is_not_a_caption_is_unavailable(router: respx.MockRouter) -> None:
    router.post(CAPTIONS_PATH).respond(200, json={"unexpected": True})
    client = make_client(router, inference_attempts=1)
    with pytest.raises(InferenceUnavailableError, match="not a caption"):
        await client.caption(b"x", "image/jpeg", "r")


async def test_readiness_relays_the_reason(router: respx.MockRouter) -> None:
    router.get("/health/ready").respond(503, json={"status": "not_ready", "detail": "The model is loading."})
    readiness = await make_client(router).readiness()
    assert not readiness.ready
    assert readiness.detail == "The model is loading."


async def test_readiness_of_an_unreachable_service_is_a_sentence(router: respx.MockRouter) -> None:
    router.get("/health/ready").mock(side_effect=httpx.ConnectError("refused"))
    readiness = await make_client(router).readiness()
    assert not readiness.ready
    assert "cannot be reached" in readiness.detail


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), (None, None), ("", None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


async def test_a_model_that_failed_to_load_after_start_is_not_retried(router: respx.MockRouter) -> None:
    failed_load = {**problem_body(503, "No model can be served: loading failed."),
                   "type": PROBLEM_TYPE_PREFIX + MODEL_LOAD_FAILED_SLUG}  # fmt: skip
    route = router.post(CAPTIONS_PATH).respond(503, json=failed_load)
    client = make_client(router, inference_attempts=4, inference_backoff_s=5.0)
    with pytest.raises(InferenceModelMissingError, match="No model can be served") as raised:
        await asyncio.wait_for(client.caption(b"x", "image/jpeg", "r"), timeout=2.0)
    assert "gave up" not in raised.value.detail
    assert route.call_count == 1  # no timed retries: the next probe says when it is back
    await client.aclose()
