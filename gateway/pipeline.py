"""One claimed image through its stages: decode, metadata, thumbnails, caption.

Each stage is timed and logged once where its outcome is decided. Results are written only
while this worker still holds the claim; a deleted image's late results are discarded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import structlog

from contracts.captions import CaptionParams
from gateway.db import Database
from gateway.errors import ImageDecodeError, InferenceError
from gateway.imaging import ImageMetadata, Thumbnail, decode, extract_metadata, make_thumbnails
from gateway.inference_client import InferenceClient
from gateway.metrics import GatewayMetrics
from gateway.models import CaptionStatus, Image, ImageStatus, utc_now
from gateway.repository import ImageRepository
from gateway.settings import GatewaySettings
from gateway.storage import BlobNotFoundError, BlobStore

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


class ImagePipeline:
    """Runs the stages of one image; owned by the worker, shared by its loops."""

    def __init__(
        self,
        settings: GatewaySettings,
        database: Database,
        storage: BlobStore,
        inference: InferenceClient,
        metrics: GatewayMetrics,
    ) -> None:
        self.settings = settings
        self.database = database
        self.storage = storage
        self.inference = inference
        self.metrics = metrics
        self._cpu_limiter = anyio.CapacityLimiter(settings.cpu_threads)
        self._caption_params = CaptionParams(max_new_tokens=settings.caption_max_new_tokens)

    async def run(self, image: Image, token: str) -> None:
        """Take ``image`` (claimed under ``token``) as far as it goes; never raises domain errors."""
        with structlog.contextvars.bound_contextvars(image_id=image.id, request_id=image.request_id):
            medium_jpeg: bytes | None = None
            if not (image.metadata_done and image.thumbnails_done):
                outcome = await self._cpu_stages_on_original(image)
                self._log_cpu_stages(outcome)
                if not await self._save_cpu_outcome(image, token, outcome):
                    return
                if outcome.failed_stage is not None:
                    return
                medium_jpeg = outcome.medium.data if outcome.medium else None
            await self._caption_stage(image, token, medium_jpeg)

    async def _cpu_stages_on_original(self, image: Image) -> CpuOutcome:
        """The Pillow stages on a local file of the original (the stored file, or an S3 download)."""
        started = time.perf_counter()
        try:
            async with self.storage.original_file(image.id, image.format) as path:
                return await anyio.to_thread.run_sync(self._cpu_stages, image, path, limiter=self._cpu_limiter)
        except BlobNotFoundError:
            return self._failed(CpuOutcome(), "decode", started, "The original file is missing from storage.")

    def _cpu_stages(self, image: Image, path: Path) -> CpuOutcome:
        settings, outcome = self.settings, CpuOutcome()
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
            anyio.from_thread.run(self.storage.put_thumbnail, image.id, "medium", outcome.medium.data)
            anyio.from_thread.run(self.storage.put_thumbnail, image.id, "small", outcome.small.data)
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
            self.metrics.stage_seconds.labels(stage, "failed" if failed else "completed").observe(duration_ms / 1000)
            if failed:
                log.warning("stage_failed", stage=stage, duration_ms=duration_ms, error=outcome.error)
            else:
                log.info("stage_completed", stage=stage, duration_ms=duration_ms)

    async def _save_cpu_outcome(self, image: Image, token: str, outcome: CpuOutcome) -> bool:
        values: dict[str, Any] = {f"{stage}_ms": ms for stage, ms in outcome.timings_ms.items()}
        if outcome.metadata is not None:
            values.update(
                orientation=outcome.metadata.orientation,
                taken_at=outcome.metadata.taken_at,
                camera_make=outcome.metadata.camera_make,
                camera_model=outcome.metadata.camera_model,
                file_datetime=outcome.metadata.file_datetime,
                metadata_done=True,
            )
        if outcome.small is not None and outcome.medium is not None:
            values.update(
                small_width=outcome.small.width,
                small_height=outcome.small.height,
                medium_width=outcome.medium.width,
                medium_height=outcome.medium.height,
            )
        if outcome.failed_stage is not None:
            values.update(
                self._final_values(image, ImageStatus.FAILED, outcome.error),
                caption_status=CaptionStatus.FAILED,
                caption_error=f"Not captioned: the {outcome.failed_stage} stage failed.",
            )
        for key, value in values.items():
            setattr(image, key, value)
        return await self._save(image, token, values)

    async def _caption_stage(self, image: Image, token: str, medium_jpeg: bytes | None) -> None:
        started = time.perf_counter()
        values: dict[str, Any]
        reused = await self.database.read(lambda session: ImageRepository(session).find_caption(image.sha256, image.id))
        try:
            if reused is not None:
                text, model, outcome = reused.caption_text, reused.caption_model, "reused"
            else:
                if medium_jpeg is None:
                    medium_jpeg = await self.storage.read_thumbnail(image.id, "medium")
                response = await self.inference.caption(
                    medium_jpeg, "image/jpeg", image.request_id, self._caption_params
                )
                text, model, outcome = response.caption, response.model, "completed"
        except InferenceError as exc:
            duration_ms = _elapsed_ms(started)
            self.metrics.inference_calls.labels(exc.caption_status).inc()
            self.metrics.stage_seconds.labels("caption", "failed").observe(duration_ms / 1000)
            log.warning(
                "stage_failed",
                stage="caption",
                duration_ms=duration_ms,
                caption_status=exc.caption_status,
                error=exc.detail,
            )
            values = {
                **self._final_values(image, ImageStatus.FAILED, f"Caption {exc.caption_status}: {exc.detail}"),
                "caption_status": exc.caption_status,
                "caption_error": exc.detail,
                "caption_ms": duration_ms,
            }
        except FileNotFoundError:
            log.warning("stage_failed", stage="caption", error="medium thumbnail missing; image deleted?")
            await self._discard_if_deleted(image.id)
            return
        else:
            duration_ms = _elapsed_ms(started)
            self.metrics.inference_calls.labels(outcome).inc()
            self.metrics.stage_seconds.labels("caption", "completed").observe(duration_ms / 1000)
            log.info("stage_completed", stage="caption", duration_ms=duration_ms, reused=outcome == "reused")
            values = {
                **self._final_values(image, ImageStatus.COMPLETED, None),
                "caption_text": text,
                "caption_model": model,
                "caption_status": CaptionStatus.COMPLETED,
                "caption_error": None,
                "caption_ms": duration_ms,
            }
        await self._save(image, token, values)

    def _final_values(self, image: Image, status: ImageStatus, error: str | None) -> dict[str, Any]:
        completed_at = utc_now()
        started_at = image.started_at or completed_at
        return {
            "status": status,
            "error": error,
            "completed_at": completed_at,
            "processing_ms": round((completed_at - started_at).total_seconds() * 1000, 2),
            "claim_token": None,
            "lease_expires_at": None,
        }

    async def _save(self, image: Image, token: str, values: dict[str, Any]) -> bool:
        saved = await self.database.write(
            lambda session: ImageRepository(session).save_progress(image.id, token, **values)
        )
        if not saved:
            log.info("result_discarded", reason="the image was deleted or its claim was taken over")
            await self._discard_if_deleted(image.id)
        elif values.get("status") in (ImageStatus.COMPLETED, ImageStatus.FAILED):
            self.metrics.images_finished.labels(str(values["status"])).inc()
            log.info("image_finished", status=str(values["status"]), error=values.get("error"))
        return saved

    async def _discard_if_deleted(self, image_id: str) -> None:
        exists = await self.database.read(lambda session: ImageRepository(session).get(image_id) is not None)
        if not exists:
            await self.storage.delete_image(image_id)
