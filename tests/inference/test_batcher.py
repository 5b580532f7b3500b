"""The bounded queue and micro-batching in front of the model worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient
from PIL import Image

from inference import errors
from inference.batcher import Batcher
from inference.captioner import BatchTimings, CaptionResult
from inference.metrics import InferenceMetrics
from inference.problems import EXCEPTION_HANDLERS
from tests.inference.fakes import SlowFakeCaptioner
from tests.support import problem_of


@pytest.fixture
async def make_batcher() -> AsyncIterator[object]:
    started: list[Batcher] = []

    def factory(captioner: SlowFakeCaptioner, **options: float) -> Batcher:
        values = {"max_batch": 1, "max_wait_ms": 5.0, "queue_size": 32, "request_timeout_s": 10.0} | options
        batcher = Batcher(
            captioner, InferenceMetrics(), max_batch=int(values["max_batch"]), max_wait_ms=values["max_wait_ms"],
            queue_size=int(values["queue_size"]), request_timeout_s=values["request_timeout_s"],
        )  # fmt: skip
        batcher.start()
        started.append(batcher)
        return batcher

    yield factory
    for batcher in started:
        await batcher.stop()


async def test_concurrent_requests_run_in_fewer_model_calls_with_their_own_captions(make_batcher: object) -> None:
    captioner = SlowFakeCaptioner(delay_s=0.05)
    batcher = make_batcher(captioner, max_batch=4, max_wait_ms=50)  # type: ignore[operator]
    images = [Image.new("RGB", (20 + n, 10)) for n in range(8)]
    results = await asyncio.gather(*(batcher.submit(image, None, None) for image in images))
    assert [result.caption for result, _ in results] == [f"fake {20 + n}x10" for n in range(8)]
    assert batcher.model_calls < len(images)
    assert max(captioner.batch_sizes) > 1


async def test_requests_with_other_prompts_are_never_mixed(make_batcher: object) -> None:
    captioner = SlowFakeCaptioner(delay_s=0.02)
    batcher = make_batcher(captioner, max_batch=4, max_wait_ms=50)  # type: ignore[operator]
    image = Image.new("RGB", (20, 10))
    results = await asyncio.gather(*(batcher.submit(image, prompt, None) for prompt in ("a", "b", "a", "b")))
    assert [result.caption for result, _ in results] == ["a fake 20x10", "b fake 20x10"] * 2
    assert captioner.batch_sizes == [2, 2]


async def test_batch_of_one_sends_every_request_alone(make_batcher: object) -> None:
    captioner = SlowFakeCaptioner()
    batcher = make_batcher(captioner)  # type: ignore[operator]
    await asyncio.gather(*(batcher.submit(Image.new("RGB", (5, 5)), None, None) for _ in range(4)))
    assert captioner.batch_sizes == [1, 1, 1, 1]


async def test_a_full_queue_is_refused_with_retry_after(make_batcher: object) -> None:
    batcher = make_batcher(SlowFakeCaptioner(delay_s=0.3), queue_size=1)  # type: ignore[operator]
    image = Image.new("RGB", (5, 5))
    outcomes = await asyncio.gather(*(batcher.submit(image, None, None) for _ in range(5)), return_exceptions=True)
    refused = [outcome for outcome in outcomes if isinstance(outcome, errors.QueueFullError)]
    assert 1 <= len(outcomes) - len(refused) <= 2
    assert refused
    assert all(error.retry_after_s for error in refused)


async def test_a_caption_that_takes_too_long_times_out(make_batcher: object) -> None:
    batcher = make_batcher(SlowFakeCaptioner(delay_s=0.5), request_timeout_s=0.1)  # type: ignore[operator]
    with pytest.raises(errors.CaptionTimeoutError):
        await batcher.submit(Image.new("RGB", (5, 5)), None, None)


class FailingOnceCaptioner(SlowFakeCaptioner):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def caption_batch(
        self, images: list[Image.Image], prompt: str | None, max_new_tokens: int | None
    ) -> tuple[list[CaptionResult], BatchTimings]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("onnxruntime fell over")
        return super().caption_batch(images, prompt, max_new_tokens)


async def test_a_failed_model_call_fails_its_batch_and_the_worker_goes_on(make_batcher: object) -> None:
    batcher = make_batcher(FailingOnceCaptioner(), max_batch=4, max_wait_ms=50)  # type: ignore[operator]
    image = Image.new("RGB", (5, 5))
    first = await asyncio.gather(*(batcher.submit(image, None, None) for _ in range(2)), return_exceptions=True)
    assert [str(outcome) for outcome in first] == ["onnxruntime fell over"] * 2
    result, _ = await batcher.submit(image, None, None)
    assert result.caption == "fake 5x5"


@pytest.mark.parametrize(
    ("error_class", "status"),
    [
        (errors.InvalidRequestError, 400),
        (errors.ImageTooLargeError, 413),
        (errors.UnsupportedImageError, 415),
        (errors.UnreadableImageError, 422),
        (errors.BeyondModelLimitError, 422),
        (errors.ModelNotReadyError, 503),
        (errors.ModelLoadFailedError, 503),
        (errors.QueueFullError, 503),
        (errors.CaptionTimeoutError, 503),
    ],
)
def test_every_inference_error_maps_to_its_problem(
    error_class: type[errors.InferenceServiceError], status: int
) -> None:
    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        raise error_class("why it failed", retry_after_s=2 if status == 503 else None)

    with TestClient(Litestar([boom], exception_handlers=EXCEPTION_HANDLERS, logging_config=None)) as client:
        response = client.get("/boom")
    assert response.status_code == status
    assert problem_of(response)["detail"] == "why it failed"
    if status == 503:
        assert response.headers["retry-after"] == "2"


@pytest.mark.parametrize("settle_s", [0.0, 0.001, 0.02])
async def test_stop_ends_the_worker_and_answers_every_queued_request(make_batcher: object, settle_s: float) -> None:
    # A request arriving together with the stop once swallowed the cancellation (asyncio.wait_for
    # on Python 3.11): the worker outlived stop() and the service never shut down.
    batcher = make_batcher(SlowFakeCaptioner(delay_s=0.05), max_batch=4, max_wait_ms=50)  # type: ignore[operator]
    image = Image.new("RGB", (5, 5))
    requests = [asyncio.create_task(batcher.submit(image, None, None)) for _ in range(6)]
    await asyncio.sleep(settle_s)
    async with asyncio.timeout(5):
        await batcher.stop()
        outcomes = await asyncio.gather(*requests, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            assert isinstance(outcome, errors.ModelNotReadyError), repr(outcome)
            assert "shutting down" in outcome.detail
    assert batcher.depth == 0


async def test_stop_while_a_batch_is_being_gathered_answers_its_requests(make_batcher: object) -> None:
    batcher = make_batcher(SlowFakeCaptioner(), max_batch=8, max_wait_ms=5000)  # type: ignore[operator]
    image = Image.new("RGB", (5, 5))
    requests = [asyncio.create_task(batcher.submit(image, None, None)) for _ in range(3)]
    await asyncio.sleep(0)  # the three requests run up to their queueing
    assert all(request.done() is False for request in requests)
    async with asyncio.timeout(10):  # the worker holds all three (none queued) and waits for more
        while True:
            if batcher.depth == 0:
                break
            await asyncio.sleep(0.005)
    async with asyncio.timeout(5):
        await batcher.stop()
        outcomes = await asyncio.gather(*requests, return_exceptions=True)
    assert all(isinstance(outcome, errors.ModelNotReadyError) for outcome in outcomes), outcomes
