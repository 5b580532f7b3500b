"""Typed writes of the pipeline (what a stage produced) and the image columns each one sets.

The ``apply_*`` functions are the only code that changes an image's columns after its insert; the
repository calls them between reading the row's old state and recording the change in the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.imaging.images import ImageMetadata
from gateway.persistence.models import CaptionModel, CaptionStatus, Image, ImageStatus, RecaptionStatus


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
class CaptionOutcome:
    """How captioning ended: a text (completed) or an error (failed/unavailable)."""

    status: CaptionStatus
    text: str | None = None
    model: CaptionModel | None = None
    error: str | None = None
    duration_ms: float | None = None


@dataclass(frozen=True)
class RecaptionOutcome:
    """How one re-caption ended: a new caption and its model (done), or an error (failed, old caption kept)."""

    text: str | None = None
    model: CaptionModel | None = None
    error: str | None = None

    @property
    def status(self) -> RecaptionStatus:
        return RecaptionStatus.DONE if self.text is not None else RecaptionStatus.FAILED


@dataclass(frozen=True)
class FinalState:
    """The end of one processing run: ``completed`` or ``failed``, with its caption's outcome.

    ``caption_cycles`` is the image's new count of caption cycles that ended ``unavailable``
    while the inference service was otherwise ready (None: unchanged).
    """

    status: ImageStatus
    caption: CaptionOutcome
    completed_at: datetime
    error: str | None = None
    caption_cycles: int | None = None


def apply_requeue(image: Image, *, reset_caption_cycles: bool) -> None:
    """Back to ``pending`` with the last run's outcome cleared (retry, or an automatic re-queue)."""
    image.status = ImageStatus.PENDING
    image.error = None
    image.caption_error = None
    image.caption_status = CaptionStatus.PENDING
    image.claim_token = None
    image.lease_expires_at = None
    image.completed_at = None
    if reset_caption_cycles:
        image.caption_cycles = 0


def apply_release(image: Image) -> None:
    """An unfinished claim given back: ``pending`` again, with what its saved stages made."""
    image.status = ImageStatus.PENDING
    image.claim_token = None
    image.lease_expires_at = None


def apply_cpu_stages(image: Image, result: CpuStagesResult) -> None:
    """What the Pillow stages made; a stage that did not run leaves its columns as they were."""
    if result.decode_ms is not None:
        image.decode_ms = result.decode_ms
    if result.metadata_ms is not None:
        image.metadata_ms = result.metadata_ms
    if result.thumbnails_ms is not None:
        image.thumbnails_ms = result.thumbnails_ms
    if (metadata := result.metadata) is not None:
        image.orientation = metadata.orientation
        image.taken_at = metadata.taken_at
        image.camera_make = metadata.camera_make
        image.camera_model = metadata.camera_model
        image.file_datetime = metadata.file_datetime
        image.metadata_done = True
    if result.small is not None and result.medium is not None:
        image.small_width, image.small_height = result.small.width, result.small.height
        image.medium_width, image.medium_height = result.medium.width, result.medium.height


def apply_final(image: Image, final: FinalState) -> None:
    """The end of a run: its status, timings from start and from upload, and the caption's outcome."""
    started_at = image.started_at or final.completed_at
    image.status = final.status
    image.error = final.error
    image.completed_at = final.completed_at
    image.processing_ms = round((final.completed_at - started_at).total_seconds() * 1000, 2)
    image.end_to_end_ms = round((final.completed_at - image.created_at).total_seconds() * 1000, 2)
    image.claim_token = None
    image.lease_expires_at = None
    image.caption_status = final.caption.status
    image.caption_error = final.caption.error
    if final.caption.status == CaptionStatus.COMPLETED:
        _set_caption(image, final.caption.text, final.caption.model)
    if final.caption.duration_ms is not None:
        image.caption_ms = final.caption.duration_ms
    if final.caption_cycles is not None:
        image.caption_cycles = final.caption_cycles


def apply_recaption(image: Image, outcome: RecaptionOutcome) -> None:
    """A re-caption saved: the new caption replaces the old one, or the old one stays with the failure noted."""
    image.claim_token = None
    image.lease_expires_at = None
    image.recaption_status = outcome.status
    image.recaption_error = outcome.error
    if outcome.text is not None:
        _set_caption(image, outcome.text, outcome.model)


def apply_recaption_release(image: Image) -> None:
    """An unfinished re-caption claim given back: still queued, free for any gateway."""
    image.claim_token = None
    image.lease_expires_at = None


def _set_caption(image: Image, text: str | None, model: CaptionModel | None) -> None:
    """The one place a caption's text and what made it are written."""
    image.caption_text = text
    image.caption_model = model.id if model else None
    image.caption_model_revision = model.revision if model else None
    image.caption_precision = model.precision if model else None
