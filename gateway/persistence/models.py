"""SQLModel tables. Never returned by handlers: ``schemas`` shapes what leaves the process."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Column, Dialect, Index, Integer, String
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

StatusT = TypeVar("StatusT", bound=StrEnum)


def utc_now() -> datetime:
    """Aware UTC timestamp; SQLModel stores it as UTC and reads it back aware, on every database."""
    return datetime.now(UTC)


class ImageStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class CaptionStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    UNAVAILABLE = "unavailable"


class RecaptionStatus(StrEnum):
    """Where an image stands in re-captioning: waiting (or in flight), re-made, or kept after a failure."""

    QUEUED = "queued"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class CaptionModel:
    """What made a caption, as the inference service's ``GET /v1/model`` reports it."""

    id: str
    revision: str | None = None
    precision: str | None = None

    def as_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> CaptionModel | None:
        if text is None:
            return None
        fields = json.loads(text)
        return cls(id=str(fields["id"]), revision=fields.get("revision"), precision=fields.get("precision"))

    def describe(self) -> str:
        """``id@revision (precision)`` for logs and sentences."""
        return f"{self.id}@{self.revision or '-'} ({self.precision or 'precision unknown'})"


class StatusColumn(TypeDecorator[StatusT]):
    """A status enum in a ``VARCHAR(16)``: stores the member's value, reads back the member.

    The schema is the plain string column the migrations create (no database enum type, no CHECK), so
    adding a status stays a code change; a value the enum does not know fails loudly on write and on read.
    """

    impl = String
    cache_ok = True

    def __init__(self, enum: type[StatusT], length: int = 16) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: StatusT | str | None, dialect: Dialect) -> str | None:  # noqa: ARG002 (TypeDecorator)
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> StatusT | None:  # noqa: ARG002 (TypeDecorator)
        return None if value is None else self.enum(value)


class RejectionReason(StrEnum):
    TOO_LARGE = "too_large"
    UNSUPPORTED_FORMAT = "unsupported_format"
    UNREADABLE = "unreadable"
    BAD_REQUEST = "bad_request"


class Image(SQLModel, table=True):
    """One accepted upload and everything the pipeline learnt about it."""

    __tablename__ = "images"

    id: str = Field(primary_key=True, max_length=32)
    filename: str = Field(max_length=255)
    status: ImageStatus = Field(default=ImageStatus.PENDING, sa_type=StatusColumn(ImageStatus), index=True)
    created_at: datetime = Field(default_factory=utc_now, index=True)
    request_id: str = Field(default="", max_length=128)

    format: str = Field(max_length=8)
    mode: str = Field(max_length=16)
    width: int
    height: int
    size_bytes: int
    sha256: str = Field(max_length=64, index=True)

    orientation: int | None = None
    taken_at: str | None = Field(default=None, max_length=40)
    camera_make: str | None = Field(default=None, max_length=255)
    camera_model: str | None = Field(default=None, max_length=255)
    file_datetime: str | None = Field(default=None, max_length=40)
    metadata_done: bool = False

    small_width: int | None = None
    small_height: int | None = None
    medium_width: int | None = None
    medium_height: int | None = None

    caption_text: str | None = None
    caption_status: CaptionStatus = Field(
        default=CaptionStatus.PENDING, sa_type=StatusColumn(CaptionStatus), index=True
    )
    caption_model: str | None = Field(default=None, max_length=255)
    caption_model_revision: str | None = Field(default=None, max_length=255)
    caption_precision: str | None = Field(default=None, max_length=16)
    caption_error: str | None = None
    recaption_status: RecaptionStatus | None = Field(default=None, sa_type=StatusColumn(RecaptionStatus))
    recaption_error: str | None = None

    started_at: datetime | None = None
    completed_at: datetime | None = None
    processing_ms: float | None = None
    error: str | None = None
    decode_ms: float | None = None
    metadata_ms: float | None = None
    thumbnails_ms: float | None = None
    caption_ms: float | None = None

    claim_token: str | None = Field(default=None, max_length=32)
    lease_expires_at: datetime | None = Field(default=None, index=True)
    attempts: int = 0
    end_to_end_ms: float | None = None
    caption_cycles: int = 0

    @property
    def thumbnails_done(self) -> bool:
        return self.small_width is not None and self.medium_width is not None

    @property
    def made_by(self) -> CaptionModel | None:
        """The model of the caption shown, ``None`` while there is none."""
        if self.caption_model is None:
            return None
        return CaptionModel(self.caption_model, self.caption_model_revision, self.caption_precision)


class RejectionCount(SQLModel, table=True):
    """How many uploads were refused, by reason; one row a reason, incremented in place."""

    __tablename__ = "rejection_counts"

    reason: str = Field(primary_key=True, max_length=32)
    count: int = 0


class StatCounter(SQLModel, table=True):
    """One shard of one stats counter (see ``gateway.persistence.ledger``); a stat is the sum over its shards."""

    __tablename__ = "stat_counters"

    key: str = Field(primary_key=True, max_length=48)
    shard: int = Field(primary_key=True)
    value: float = 0.0


class Event(SQLModel, table=True):
    """One state change of one image, committed with it; ``id`` grows monotonically."""

    __tablename__ = "events"

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    )
    type: str = Field(max_length=32)
    image_id: str = Field(max_length=32, index=True)
    status: str = Field(max_length=16)  # an ImageStatus value, or "deleted" for image.deleted
    caption: str | None = None
    caption_status: CaptionStatus | None = Field(default=None, sa_type=StatusColumn(CaptionStatus))
    error: str | None = None
    at: datetime = Field(default_factory=utc_now, index=True)
    model: str | None = None  # image.caption_updated: CaptionModel.as_json() of the new caption
    previous_model: str | None = None  # ... and of the caption it replaced


class WebhookEndpoint(SQLModel, table=True):
    """A configured webhook URL and how far the events have been handed to its outbox."""

    __tablename__ = "webhook_endpoints"

    url: str = Field(primary_key=True, max_length=2048)
    last_event_id: int = 0
    disabled_at: datetime | None = None
    disabled_reason: str | None = None


class WebhookDelivery(SQLModel, table=True):
    """One event for one URL: the durable outbox row, claimed like images, deleted once delivered."""

    __tablename__ = "webhook_deliveries"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2048, index=True)
    event_id: int = Field(index=True)
    body: str
    created_at: datetime = Field(default_factory=utc_now)
    next_attempt_at: datetime = Field(default_factory=utc_now, index=True)
    attempts: int = 0
    last_error: str | None = None
    claim_token: str | None = Field(default=None, max_length=32)
    lease_expires_at: datetime | None = None


class IdempotencyRecord(SQLModel, table=True):
    """One ``Idempotency-Key`` of ``POST /api/images``: claimed while in flight, then the 202 it got."""

    __tablename__ = "idempotency_keys"

    key_hash: str = Field(primary_key=True, max_length=64)  # sha256 of (API key scope, key)
    claim_token: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utc_now, index=True)
    completed: bool = False
    sha256: str | None = Field(default=None, max_length=64)  # of the file bytes of the first upload
    image_id: str | None = Field(default=None, max_length=32, index=True)
    response_body: str | None = None  # the first 202's JSON body, answered again on a replay


# Constant-time claims and exact maxima at any table size: index lookups, never scans.
Index("ix_images_status_created_at", Image.status, Image.created_at, Image.id)  # type: ignore[arg-type]
Index("ix_images_status_processing_ms", Image.status, Image.processing_ms)  # type: ignore[arg-type]
Index("ix_images_status_end_to_end_ms", Image.status, Image.end_to_end_ms)  # type: ignore[arg-type]
# Re-caption claims probe the queued rows only, oldest first.
Index("ix_images_recaption_status_created_at", Image.recaption_status, Image.created_at, Image.id)  # type: ignore[arg-type]


def iso_utc(moment: datetime | None) -> str | None:
    """Server time as ISO 8601 UTC with ``Z``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
