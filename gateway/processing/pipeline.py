"""One claimed image through its stages: decode, metadata, thumbnails, caption.

Each stage is timed, and logged once its outcome is saved: a ``stage_completed`` line never
claims work that a crash before the save lost. Results are written only while this worker still
holds the claim; a deleted image's late results are discarded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.from_thread
import structlog
from sqlmodel import Session

from gateway.errors import ImageDecodeError, InferenceError
from gateway.imaging.images import ImageMetadata, Thumbnail, decode, extract_metadata, make_thumbnails
from gateway.persistence.models import CaptionStatus, Image, ImageStatus, utc_now
from gateway.persistence.repository import ImageRepository
from gateway.persistence.threads import run_to_completion
from gateway.persistence.transitions import CaptionOutcome, CpuStagesResult, FinalState, ThumbnailDimensions
from gateway.processing.services import ProcessingServices
from gateway.replicas.client import made_by
from gateway.storage import BlobNotFoundError

log = structlog.get_logger("gateway.pipeline")


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


@dataclass
class CpuOutcome:
    """What the Pillow stages produced; ``failed_stage`` is set when one of them failed."""

    timings_ms: dict[str, float] = field(default_factory=dict)
    metadata: ImageMetadata | None = None
    small: Thumbnail | None = None
    medium: Thumbnail | None = None
    failed_stage: str | None = None
    error: str | None = None

    def result(self) -> CpuStagesResult:
        def size(thumbnail: Thumbnail | None) -> ThumbnailDimensions | None:
            return None if thumbnail is None else ThumbnailDimensions(thumbnail.width, thumbnail.height)

        return CpuStagesResult(
            decode_ms=self.timings_ms.get("decode"),
            metadata_ms=self.timings_ms.get("metadata"),
            thumbnails_ms=self.timings_ms.get("thumbnails"),
            metadata=self.metadata,
            small=size(self.small),
            medium=size(self.medium),
        )


class ImagePipeline:
    """Runs the stages of one image; owned by the worker, shared by its loops."""

    def __init__(self, services: ProcessingServices) -> None:
        self.services = services
        self._cpu_limiter = anyio.CapacityLimiter(services.settings.cpu_threads)

    async def run(self, image: Image, token: str) -> None:
        """Take ``image`` (claimed under ``token``) as far as it goes; never raises domain errors."""
        with structlog.contextvars.bound_contextvars(image_id=image.id, request_id=image.request_id):
            medium_jpeg: bytes | None = None
            if not (image.metadata_done and image.thumbnails_done):
                outcome = await self._cpu_stages_on_original(image)
                final = self._cpu_failure(outcome)
                if not await self._save(image, token, outcome.result(), final):
                    return
                self._log_cpu_stages(outcome)
                if final is not None:
                    self._finished(final)
                    return
                medium_jpeg = outcome.medium.data if outcome.medium else None
            await self._caption_stage(image, token, medium_jpeg)

    async def _cpu_stages_on_original(self, image: Image) -> CpuOutcome:
        """The Pillow stages on a local file of the original (the stored file, or an S3 download)."""
        started = time.perf_counter()
        try:
            async with self.services.storage.original_file(image.id, image.format) as path:
                return await run_to_completion(self._cpu_stages, image, path, limiter=self._cpu_limiter)
        except BlobNotFoundError:
            return self._failed(CpuOutcome(), "decode", started, "The original file is missing from storage.")

    def _cpu_stages(self, image: Image, path: Path) -> CpuOutcome:
        settings, outcome = self.services.settings, CpuOutcome()
        started = time.perf_counter()
        try:
            decoded = decode(path, image.format, settings.medium_thumbnail_px)
        except ImageDecodeError as exc:
            return self._failed(outcome, "decode", started, exc.detail)
        except FileNotFoundError:
            return self._failed(outcome, "decode", started, "The original file is missing from storage.")
        outcome.timings_ms["decode"] = _elapsed_ms(started)
        started = time.perf_counter()
        outcome.metadata = extract_metadata(decoded.exif)
        outcome.timings_ms["metadata"] = _elapsed_ms(started)
        started = time.perf_counter()
        try:
            outcome.small, outcome.medium = make_thumbnails(
                decoded.pixels,
                outcome.metadata.orientation,
                settings.small_thumbnail_px,
                settings.medium_thumbnail_px,
                settings.thumbnail_quality,
            )
            anyio.from_thread.run(self.services.storage.put_thumbnail, image.id, "medium", outcome.medium.data)
            anyio.from_thread.run(self.services.storage.put_thumbnail, image.id, "small", outcome.small.data)
        except (OSError, ValueError) as exc:
            return self._failed(outcome, "thumbnails", started, f"Thumbnails could not be made: {exc}.")
        outcome.timings_ms["thumbnails"] = _elapsed_ms(started)
        return outcome

    @staticmethod
    def _failed(outcome: CpuOutcome, stage: str, started: float, error: str) -> CpuOutcome:
        outcome.timings_ms[stage] = _elapsed_ms(started)
        outcome.failed_stage, outcome.error = stage, error
        return outcome

    def _log_cpu_stages(self, outcome: CpuOutcome) -> None:
        for stage, duration_ms in outcome.timings_ms.items():
            failed = stage == outcome.failed_stage
            stage_seconds = self.services.metrics.stage_seconds.labels(stage, "failed" if failed else "completed")
            stage_seconds.observe(duration_ms / 1000)
            if failed:
                log.warning("stage_failed", stage=stage, duration_ms=duration_ms, error=outcome.error)
            else:
                log.info("stage_completed", stage=stage, duration_ms=duration_ms)

    @staticmethod
    def _cpu_failure(outcome: CpuOutcome) -> FinalState | None:
        if outcome.failed_stage is None:
            return None
        return FinalState(
            status=ImageStatus.FAILED,
            error=outcome.error,
            completed_at=utc_now(),
            caption=CaptionOutcome(
                CaptionStatus.FAILED, error=f"Not captioned: the {outcome.failed_stage} stage failed."
            ),
        )

    async def _caption_stage(self, image: Image, token: str, medium_jpeg: bytes | None) -> None:
        started = time.perf_counter()
        # After a model switch, never reuse the old model's caption.
        served = self.services.inference.pool.served_models()
        reused = await self.services.database.read(
            lambda session: ImageRepository(session).find_caption(image.sha256, image.id, served)
        )
        try:
            if reused is not None:
                text, model, outcome = reused.caption_text, reused.made_by, "reused"
            else:
                if medium_jpeg is None:
                    medium_jpeg = await self.services.storage.read_thumbnail(image.id, "medium")
                response = await self.services.inference.caption(
                    medium_jpeg, "image/jpeg", image.request_id, self.services.caption_params
                )
                text, model, outcome = response.caption, made_by(response), "completed"
        except InferenceError as exc:
            duration_ms = _elapsed_ms(started)
            final = await self._caption_failure(image, exc, duration_ms)
            if await self._save(image, token, None, final):
                self.services.metrics.inference_calls.labels(exc.caption_status).inc()
                self.services.metrics.stage_seconds.labels("caption", "failed").observe(duration_ms / 1000)
                log.warning(
                    "stage_failed",
                    stage="caption",
                    duration_ms=duration_ms,
                    caption_status=final.caption.status,
                    caption_cycles=final.caption_cycles,
                    error=exc.detail,
                )
                self._finished(final)
            return
        except FileNotFoundError:
            log.warning("stage_failed", stage="caption", error="medium thumbnail missing; image deleted?")
            await self._discard_if_deleted(image.id)
            return
        duration_ms = _elapsed_ms(started)
        caption = CaptionOutcome(CaptionStatus.COMPLETED, text=text, model=model, duration_ms=duration_ms)
        final = FinalState(status=ImageStatus.COMPLETED, caption=caption, completed_at=utc_now())
        if await self._save(image, token, None, final):
            self.services.metrics.inference_calls.labels(outcome).inc()
            self.services.metrics.stage_seconds.labels("caption", "completed").observe(duration_ms / 1000)
            log.info("stage_completed", stage="caption", duration_ms=duration_ms, reused=outcome == "reused")
            self._finished(final)

    async def _caption_failure(self, image: Image, exc: InferenceError, duration_ms: float) -> FinalState:
        """The failed end of a caption cycle; the cycle counts only while inference is otherwise ready.

        ``unavailable`` after every replica was down or not ready does not count (the re-queue
        watcher waits for readiness); ``unavailable`` while some replica's readiness check says it
        is ready (a 5xx for this one request, say, which may have ejected that replica) does. The
        ``caption_max_cycles``-th counted cycle gives up:
        the caption is ``failed`` with the last error and is not re-queued again.
        """
        status, detail, cycles = CaptionStatus(exc.caption_status), exc.detail, None
        inference = self.services.inference
        if status == CaptionStatus.UNAVAILABLE and (await inference.readiness(image.request_id)).answering:
            cycles = image.caption_cycles + 1
            if cycles >= self.services.settings.caption_max_cycles:
                status = CaptionStatus.FAILED
                detail = f"Gave up after {cycles} caption attempts while inference was ready; last error: {detail}"
        caption = CaptionOutcome(status, error=detail, duration_ms=duration_ms)
        return FinalState(
            status=ImageStatus.FAILED,
            error=f"Caption {status}: {detail}",
            completed_at=utc_now(),
            caption=caption,
            caption_cycles=cycles,
        )

    async def _save(self, image: Image, token: str, stages: CpuStagesResult | None, final: FinalState | None) -> bool:
        def write(session: Session) -> bool:
            repository = ImageRepository(session)
            if stages is not None and not repository.save_cpu_stages(image.id, token, stages):
                return False
            return final is None or repository.finish(image.id, token, final)

        saved = await self.services.database.write(write)
        if not saved:
            log.info("result_discarded", reason="the image was deleted or its claim was taken over")
            await self._discard_if_deleted(image.id)
        return saved

    def _finished(self, final: FinalState) -> None:
        self.services.metrics.images_finished.labels(final.status.value).inc()
        log.info("image_finished", status=final.status.value, error=final.error)

    async def _discard_if_deleted(self, image_id: str) -> None:
        exists = await self.services.database.read(lambda session: ImageRepository(session).get(image_id) is not None)
        if not exists:
            await self.services.storage.delete_image(image_id)
