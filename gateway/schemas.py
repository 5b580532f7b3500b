"""Public API shapes (what leaves the process), built from table rows; never a table model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from litestar.params import Parameter
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from gateway.persistence.aggregates import (
    CaptionCounts,
    ProcessingTimes,
    RecaptionCounts,
    RejectionCounts,
    StageAverages,
    StatsSnapshot,
    StatusCounts,
)
from gateway.persistence.models import Image, iso_utc

# The pattern is documentation only: a malformed id is a 404 like an unknown one (API.md), not a 400.
ImageId = Annotated[
    str, Parameter(description="Image id (32 hex characters).", schema_extra={"pattern": "^[0-9a-f]{32}$"})
]


@dataclass(frozen=True)
class ThumbnailLinks:
    small: str
    medium: str


@dataclass(frozen=True)
class ImageLinks:
    self: str
    original: str
    thumbnails: ThumbnailLinks


@dataclass(frozen=True)
class ImageSummary:
    id: str
    filename: str
    status: str
    created_at: str
    caption: str | None
    links: ImageLinks


@dataclass(frozen=True)
class ImagePage:
    items: list[ImageSummary]
    next_cursor: str | None


@dataclass(frozen=True)
class Camera:
    make: str | None
    model: str | None


@dataclass(frozen=True)
class ImageMetadataView:
    width: int
    height: int
    format: str
    mode: str
    size_bytes: int
    sha256: str
    orientation: int
    taken_at: str | None
    camera: Camera | None
    file_datetime: str


@dataclass(frozen=True)
class ThumbnailView:
    url: str
    width: int
    height: int


@dataclass(frozen=True)
class ThumbnailsView:
    small: ThumbnailView | None
    medium: ThumbnailView | None


@dataclass(frozen=True)
class ModelView:
    """What made a caption: the model id and revision that ``GET /v1/model`` of the inference service reported."""

    id: str
    revision: str | None


@dataclass(frozen=True)
class RecaptionView:
    """The image's latest re-caption: ``queued`` (waiting or in flight), ``done``, or ``failed`` (caption kept)."""

    status: Literal["queued", "done", "failed"]
    error: str | None


@dataclass(frozen=True)
class CaptionView:
    text: str | None
    status: str
    model: ModelView | None
    precision: str | None
    error: str | None
    recaption: RecaptionView | None


@dataclass(frozen=True)
class StagesView:
    decode: float | None
    metadata: float | None
    thumbnails: float | None
    caption: float | None


@dataclass(frozen=True)
class ImageDetails:
    id: str
    filename: str
    status: str
    created_at: str
    links: ImageLinks
    metadata: ImageMetadataView
    thumbnails: ThumbnailsView
    caption: CaptionView
    started_at: str | None
    completed_at: str | None
    processing_ms: float | None
    error: str | None
    stages_ms: StagesView


@dataclass(frozen=True)
class ThumbnailInfo:
    id: str
    size: str
    url: str
    width: int
    height: int
    caption: str | None


@dataclass(frozen=True)
class ReplicaHealth:
    url: str
    state: Literal["ready", "ejected", "unknown"]
    in_flight: int
    detail: str


@dataclass(frozen=True)
class InferenceHealth:
    ready: bool
    detail: str
    replicas: list[ReplicaHealth]


@dataclass(frozen=True)
class ReadinessView:
    status: str
    database: str
    inference: InferenceHealth
    storage: str = "ok"  # "ok", or one sentence naming what is wrong with the blob store


def image_links(image_id: str) -> ImageLinks:
    base = f"/api/images/{image_id}"
    return ImageLinks(
        self=base,
        original=f"{base}/original",
        thumbnails=ThumbnailLinks(small=f"{base}/thumbnails/small", medium=f"{base}/thumbnails/medium"),
    )


def summary_of(image: Image) -> ImageSummary:
    return ImageSummary(
        id=image.id,
        filename=image.filename,
        status=image.status,
        created_at=iso_utc(image.created_at) or "",
        caption=image.caption_text,
        links=image_links(image.id),
    )


def _thumbnail_view(url: str, width: int | None, height: int | None) -> ThumbnailView | None:
    if width is None or height is None:
        return None
    return ThumbnailView(url=url, width=width, height=height)


def _caption_view(image: Image) -> CaptionView:
    made_by = image.made_by
    recaption = image.recaption_status
    return CaptionView(
        text=image.caption_text,
        status=image.caption_status,
        model=ModelView(id=made_by.id, revision=made_by.revision) if made_by else None,
        precision=made_by.precision if made_by else None,
        error=image.caption_error,
        recaption=RecaptionView(status=recaption.value, error=image.recaption_error) if recaption else None,
    )


def details_of(image: Image) -> ImageDetails:
    links = image_links(image.id)
    camera = (
        Camera(make=image.camera_make, model=image.camera_model)
        if image.camera_make is not None or image.camera_model is not None
        else None
    )
    return ImageDetails(
        id=image.id,
        filename=image.filename,
        status=image.status,
        created_at=iso_utc(image.created_at) or "",
        links=links,
        metadata=ImageMetadataView(
            width=image.width,
            height=image.height,
            format=image.format,
            mode=image.mode,
            size_bytes=image.size_bytes,
            sha256=image.sha256,
            orientation=image.orientation or 1,
            taken_at=image.taken_at,
            camera=camera,
            file_datetime=image.file_datetime or iso_utc(image.created_at) or "",
        ),
        thumbnails=ThumbnailsView(
            small=_thumbnail_view(links.thumbnails.small, image.small_width, image.small_height),
            medium=_thumbnail_view(links.thumbnails.medium, image.medium_width, image.medium_height),
        ),
        caption=_caption_view(image),
        started_at=iso_utc(image.started_at),
        completed_at=iso_utc(image.completed_at),
        processing_ms=image.processing_ms,
        error=image.error,
        stages_ms=StagesView(
            decode=image.decode_ms,
            metadata=image.metadata_ms,
            thumbnails=image.thumbnails_ms,
            caption=image.caption_ms,
        ),
    )


@dataclass(frozen=True)
class StatsView:
    """``GET /api/stats``: rates are over completed + failed (0..1), null when nothing finished."""

    total: int
    by_status: StatusCounts
    success_rate: float | None
    failure_rate: float | None
    processing_ms: ProcessingTimes
    end_to_end_ms: ProcessingTimes
    stage_ms_avg: StageAverages
    captions: CaptionCounts
    rejected: RejectionCounts
    recaption: RecaptionCounts
    uptime_s: float
    uptime_scope: Literal["process"] = "process"


def stats_of(snapshot: StatsSnapshot, uptime_s: float) -> StatsView:
    """The stats view from ``ImageRepository.stats()``; ``uptime_s`` is this process's."""
    return StatsView(
        total=snapshot.total,
        by_status=snapshot.by_status,
        success_rate=snapshot.success_rate,
        failure_rate=snapshot.failure_rate,
        processing_ms=snapshot.processing_ms,
        end_to_end_ms=snapshot.end_to_end_ms,
        stage_ms_avg=snapshot.stage_ms_avg,
        captions=snapshot.captions,
        rejected=snapshot.rejected,
        recaption=snapshot.recaption,
        uptime_s=uptime_s,
    )


class RecaptionRequest(BaseModel):
    """``POST /api/captions/recaption``: ``all`` queues every caption, not only those another model made.

    A pydantic model for ``StrictBool``: ``0``, ``1`` or ``"false"`` are 400, not read as booleans.
    """

    model_config = ConfigDict(frozen=True)

    all: StrictBool = Field(default=False, description="Queue every caption, not only those another model made.")


@dataclass(frozen=True)
class RecaptionQueued:
    """How many captions this request queued (captions already queued are not counted again)."""

    queued: int
