"""Typed writes of the pipeline (what a stage produced) and the image columns each one sets."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from gateway.imaging import ImageMetadata
from gateway.models import CaptionStatus, Image, ImageStatus


@dataclass(frozen=True)
class ThumbnailDimensions:
    width: int
    height: int


@dataclass(frozen=True)
class CpuStagesResult:
    """The Pillow stages' output: durations of the stages that ran, and what they made."""

    decode_ms: float | None = None
    metadata_ms: float | None = None
    thumbnails_ms: float | None = None
    metadata: ImageMetadata | None = None
    small: ThumbnailDimensions | None = None
    medium: ThumbnailDimensions | None = None


@dataclass(frozen=True)
class CaptionResult:
    """How captioning ended: a text (completed) or an error (failed/unavailable)."""

    status: CaptionStatus
    text: str | None = None
    model: str | None = None
    error: str | None = None
    duration_ms: float | None = None


@dataclass(frozen=True)
class FinalState:
    """The end of one processing run: ``completed`` or ``failed``, with its caption's outcome.

    ``caption_cycles`` is the image's new count of caption cycles that ended ``unavailable``
    while the inference service was otherwise ready (None: unchanged).
    """

    status: ImageStatus
    caption: CaptionResult
    completed_at: datetime
    error: str | None = None
    caption_cycles: int | None = None


def requeued_values() -> dict[str, object]:
    return {
        "status": ImageStatus.PENDING,
        "error": None,
        "caption_error": None,
        "caption_status": CaptionStatus.PENDING,
        "claim_token": None,
        "lease_expires_at": None,
        "completed_at": None,
    }


def cpu_values(result: CpuStagesResult) -> dict[str, object]:
    values: dict[str, object] = {
        f"{stage}_ms": ms
        for stage, ms in (
            ("decode", result.decode_ms),
            ("metadata", result.metadata_ms),
            ("thumbnails", result.thumbnails_ms),
        )
        if ms is not None
    }
    if result.metadata is not None:
        values.update(asdict(result.metadata), metadata_done=True)
    if result.small is not None and result.medium is not None:
        values.update(
            small_width=result.small.width,
            small_height=result.small.height,
            medium_width=result.medium.width,
            medium_height=result.medium.height,
        )
    return values


def final_values(image: Image, final: FinalState) -> dict[str, object]:
    started_at = image.started_at or final.completed_at
    values: dict[str, object] = {
        "status": final.status,
        "error": final.error,
        "completed_at": final.completed_at,
        "processing_ms": round((final.completed_at - started_at).total_seconds() * 1000, 2),
        "end_to_end_ms": round((final.completed_at - image.created_at).total_seconds() * 1000, 2),
        "claim_token": None,
        "lease_expires_at": None,
        "caption_status": final.caption.status,
        "caption_error": final.caption.error,
    }
    if final.caption.status == CaptionStatus.COMPLETED:
        values.update(caption_text=final.caption.text, caption_model=final.caption.model)
    if final.caption.duration_ms is not None:
        values["caption_ms"] = final.caption.duration_ms
    if final.caption_cycles is not None:
        values["caption_cycles"] = final.caption_cycles
    return values
