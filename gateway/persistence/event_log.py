"""The event log: one row per state change, written in the transaction that made the change.

Ids come from an autoincrement key. On PostgreSQL concurrent transactions could commit ids
out of order (id 11 visible before id 10), and a reader resuming "after 11" would miss 10.
So every event-writing transaction takes one advisory transaction lock just before it inserts
its events (the last statement before COMMIT, see ``gateway.persistence.ledger``): ids are handed out and
committed in order, and "after N" never skips a row that shows up later. The lock is held only
for the insert and the commit. The same statement sends ``NOTIFY gateway_events``, delivered at
commit, to wake readers on every gateway. SQLite has one writer at a time, so ids commit in order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import delete, func, insert, select, text
from sqlmodel import Session, col

from gateway.persistence.models import CaptionModel, CaptionStatus, Event, iso_utc

NOTIFY_CHANNEL = "gateway_events"
EVENTS_LOCK_KEY = 7291002


class EventType(StrEnum):
    ACCEPTED = "image.accepted"
    COMPLETED = "image.completed"
    FAILED = "image.failed"
    DELETED = "image.deleted"
    REQUEUED = "image.requeued"
    CAPTION_UPDATED = "image.caption_updated"


@dataclass(frozen=True)
class PendingEvent:
    """An event waiting for its transaction to commit."""

    type: EventType
    image_id: str
    status: str  # an ImageStatus value, or "deleted"
    caption: str | None
    caption_status: CaptionStatus | None
    error: str | None
    at: datetime
    model: str | None = None  # CaptionModel.as_json(), image.caption_updated only
    previous_model: str | None = None


def write_events(session: Session, events: list[PendingEvent]) -> None:
    """Insert ``events`` in the session's transaction (call it last, right before COMMIT)."""
    is_postgresql = session.connection().dialect.name == "postgresql"
    if is_postgresql:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENTS_LOCK_KEY})
    session.execute(insert(Event), [{**asdict(event), "type": event.type.value} for event in events])
    if is_postgresql:
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})


@dataclass(frozen=True)
class ImageEventData:
    """The ``data`` of every event but ``image.caption_updated``, field for field as SSE and webhooks send it.

    ``status`` is the image's status after the change (``"deleted"`` on ``image.deleted``); ``caption`` is
    set on ``image.completed``; ``caption_status`` is ``None`` on ``image.deleted``.
    """

    id: str
    status: str
    caption: str | None
    caption_status: CaptionStatus | None
    error: str | None
    at: str


@dataclass(frozen=True)
class CaptionUpdatedData:
    """The ``data`` of ``image.caption_updated``; ``previous_model`` is ``None`` when it was never recorded."""

    id: str
    caption: str | None
    model: CaptionModel | None
    previous_model: CaptionModel | None
    at: str


EventData = ImageEventData | CaptionUpdatedData


def event_data(event: Event) -> EventData:
    """What SSE streams and webhooks POST of an event (as JSON: ``dataclasses.asdict``, fields in this order)."""
    at = iso_utc(event.at) or ""
    if event.type == EventType.CAPTION_UPDATED:
        model, previous = CaptionModel.from_json(event.model), CaptionModel.from_json(event.previous_model)
        return CaptionUpdatedData(id=event.image_id, caption=event.caption, model=model, previous_model=previous, at=at)
    return ImageEventData(id=event.image_id, status=event.status, caption=event.caption,
                          caption_status=event.caption_status, error=event.error, at=at)  # fmt: skip


def events_after(session: Session, after_id: int, image_id: str | None = None, limit: int = 500) -> list[Event]:
    """Committed events with an id above ``after_id``, oldest first (optionally of one image)."""
    query = select(Event).where(col(Event.id) > after_id).order_by(col(Event.id)).limit(limit)
    if image_id is not None:
        query = query.where(col(Event.image_id) == image_id)
    return list(session.execute(query).scalars())


def newest_event_id(session: Session) -> int:
    """The newest event id, 0 when there is none: a stream without a resume point starts after it."""
    return int(session.execute(select(func.coalesce(func.max(col(Event.id)), 0))).scalar_one())


def prune_events(session: Session, older_than: datetime) -> int:
    """Delete events recorded before ``older_than``; returns how many."""
    result = session.execute(delete(Event).where(col(Event.at) < older_than))
    return int(result.rowcount)  # type: ignore[attr-defined]
