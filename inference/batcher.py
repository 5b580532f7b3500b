"""A bounded request queue in front of one model worker, with optional micro-batching.

Requests wait in an ``asyncio.Queue`` of ``queue_size``; a full queue is a 503 with
``Retry-After``. One worker takes the oldest request, then for up to ``max_wait_ms`` gathers
more that share its prompt and token budget (up to ``max_batch``), and runs the model once for
all of them in a thread. ``max_batch = 1`` (the CPU default) sends every request alone.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

import anyio.to_thread
import structlog
from PIL import Image

from inference.captioner import BatchTimings, Captioner, CaptionResult
from inference.errors import CaptionTimeoutError, ModelNotReadyError, QueueFullError
from inference.metrics import InferenceMetrics

log = structlog.get_logger("inference.batcher")
QUEUE_FULL_RETRY_AFTER_S = 1.0


@dataclass
class CaptionJob:
    image: Image.Image
    prompt: str | None
    max_new_tokens: int | None
    future: asyncio.Future[tuple[CaptionResult, BatchTimings]]
    enqueued_at: float = field(default_factory=time.perf_counter)

    @property
    def group(self) -> tuple[str | None, int | None]:
        return self.prompt, self.max_new_tokens


class Batcher:
    def __init__(
        self,
        captioner: Captioner,
        metrics: InferenceMetrics,
        *,
        max_batch: int,
        max_wait_ms: float,
        queue_size: int,
        request_timeout_s: float,
    ) -> None:
        self.captioner = captioner
        self.metrics = metrics
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000
        self.request_timeout_s = request_timeout_s
        self._queue: asyncio.Queue[CaptionJob] = asyncio.Queue(maxsize=queue_size)
        self._held: deque[CaptionJob] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._stopping = False
        self.model_calls = 0

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="inference-model-worker")

    async def stop(self) -> None:
        """End the model worker; requests still queued get a 503 rather than waiting out their timeout."""
        self._stopping = True
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.wait([self._worker])
        waiting = list(self._held)
        self._held.clear()
        while not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        _fail_jobs(waiting, _shutting_down())

    @property
    def depth(self) -> int:
        return self._queue.qsize() + len(self._held)

    async def submit(
        self, image: Image.Image, prompt: str | None, max_new_tokens: int | None
    ) -> tuple[CaptionResult, BatchTimings]:
        """Queue one image; 503 when the queue is full or the caption takes too long."""
        job = CaptionJob(image, prompt, max_new_tokens, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.metrics.rejected.labels("queue_full").inc()
            raise QueueFullError(
                f"{self._queue.maxsize} requests are already queued; retry shortly.",
                retry_after_s=QUEUE_FULL_RETRY_AFTER_S,
            ) from None
        self.metrics.queue_depth.set(self.depth)
        try:
            async with asyncio.timeout(self.request_timeout_s):
                return await asyncio.shield(job.future)
        except TimeoutError:
            job.future.cancel()
            raise CaptionTimeoutError(
                f"The caption did not finish within {self.request_timeout_s:g} s.", retry_after_s=5
            ) from None

    async def _next_batch(self) -> list[CaptionJob]:
        first = self._held.popleft() if self._held else await self._queue.get()
        batch = [first]
        for job in [job for job in self._held if job.group == first.group][: self.max_batch - 1]:
            self._held.remove(job)
            batch.append(job)
        deadline = time.perf_counter() + self.max_wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.perf_counter()
            try:
                job = self._queue.get_nowait() if remaining <= 0 else await self._get_within(remaining)
            except (TimeoutError, asyncio.QueueEmpty):
                break
            except asyncio.CancelledError:
                self._held.extendleft(reversed(batch))  # stop() answers them
                raise
            (batch if job.group == first.group else self._held).append(job)
        return [job for job in batch if not job.future.done()]

    async def _get_within(self, timeout_s: float) -> CaptionJob:
        # asyncio.timeout, not asyncio.wait_for: on Python 3.11 wait_for swallows a cancellation
        # that lands together with a new request, and the worker would outlive stop().
        async with asyncio.timeout(timeout_s):
            return await self._queue.get()

    async def _run(self) -> None:
        while not self._stopping:
            batch = await self._next_batch()
            self.metrics.queue_depth.set(self.depth)
            if not batch:
                continue
            started = time.perf_counter()
            for job in batch:
                self.metrics.queue_wait_seconds.observe(started - job.enqueued_at)
            try:
                results, timings = await anyio.to_thread.run_sync(
                    self.captioner.caption_batch, [job.image for job in batch], batch[0].prompt,
                    batch[0].max_new_tokens,
                )  # fmt: skip
            except asyncio.CancelledError:
                _fail_jobs(batch, _shutting_down())
                raise
            except Exception as exc:
                log.exception("model_call_failed", batch_size=len(batch))
                _fail_jobs(batch, exc)
                continue
            self.model_calls += 1
            self.metrics.batch_size.observe(len(batch))
            self.metrics.observe_timings(timings)
            for job, result in zip(batch, results, strict=True):
                if not job.future.done():
                    job.future.set_result((result, timings))


def _shutting_down() -> ModelNotReadyError:
    return ModelNotReadyError("The service is shutting down.", retry_after_s=5)


def _fail_jobs(jobs: list[CaptionJob], error: BaseException) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(error)
