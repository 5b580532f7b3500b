"""A Captioner fake for service tests that do not need a real model."""

from __future__ import annotations

import threading
import time

from PIL import Image

from inference.captioner import BatchTimings, CaptionResult, ModelDescription


class SlowFakeCaptioner:
    """Captions ``fake <width>x<height>`` after ``delay_s``; counts model calls and batch sizes."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.batch_sizes: list[int] = []
        self._lock = threading.Lock()

    def caption_batch(
        self, images: list[Image.Image], prompt: str | None, max_new_tokens: int | None
    ) -> tuple[list[CaptionResult], BatchTimings]:
        with self._lock:
            started = time.perf_counter()
            time.sleep(self.delay_s)
            self.batch_sizes.append(len(images))
            prefix = f"{prompt} " if prompt else ""
            results = [CaptionResult(f"{prefix}fake {image.width}x{image.height}", [1, 2], 1) for image in images]
            return results, BatchTimings(0.0, (time.perf_counter() - started) * 1000, 0.0)

    def describe(self) -> ModelDescription:
        return ModelDescription("fake", None, "fp32", ["CPUExecutionProvider"], is_test_model=True)

    def check_request(self, prompt: str | None, max_new_tokens: int | None) -> None:
        """The fake has no positions to run out of."""


class GatedFakeCaptioner(SlowFakeCaptioner):
    """Holds every call (the warm-up too) until ``gate`` is set: the service stays "loading" meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def caption_batch(
        self, images: list[Image.Image], prompt: str | None, max_new_tokens: int | None
    ) -> tuple[list[CaptionResult], BatchTimings]:
        assert self.gate.wait(timeout=120), "the test never opened the gate"
        return super().caption_batch(images, prompt, max_new_tokens)
