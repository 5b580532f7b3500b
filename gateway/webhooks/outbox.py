"""The webhook outbox in the database: fan events out to one row per URL, claim due rows, settle them.

Events are fanned out by a cursor per URL (``webhook_endpoints.last_event_id``) that moves in the
same transaction as the rows it creates, so an event is handed to every URL exactly once, whichever
gateway does it. Delivery rows are claimed like images (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
under a lease), so several gateways share the sending and a killed one's claims are taken over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from gateway.models import Event, WebhookDelivery, WebhookEndpoint, utc_now
from gateway.schemas import iso_utc

FAN_OUT_BATCH = 500
RETURNED = (
    col(WebhookDelivery.id),
    col(WebhookDelivery.url),
    col(WebhookDelivery.event_id),
    col(WebhookDelivery.body),
    col(WebhookDelivery.attempts),
    col(WebhookDelivery.created_at),
)


@dataclass(frozen=True)
class ClaimedDelivery:
    """One delivery this gateway holds under its claim token."""

    id: int
    url: str
    event_id: int
    body: str
    attempts: int
    created_at: datetime


def delivery_body(event: Event) -> str:
    """The JSON a receiver gets: ``{"type", "event_id", "data": {"id", "status", "caption", "error", "at"}}``."""
    data = {"id": event.image_id, "status": event.status, "caption": event.caption, "error": event.error,
            "at": iso_utc(event.at)}  # fmt: skip
    return json.dumps({"type": event.type, "event_id": event.id, "data": data}, separators=(",", ":"))


def visible_events(events: list[Event], after_id: int, now: datetime, gap_grace_s: float) -> list[Event]:
    """The leading run of ``events`` (ordered by id, all > ``after_id``) that can be handed on for good.

    Ids are taken when a transaction inserts its event but become visible when it commits, so a
    hole in the ids may still fill. A reader stops before a hole until the event behind it is
    ``gap_grace_s`` old; by then the hole is a rolled-back transaction, and it is passed over.
    """
    taken: list[Event] = []
    expected = after_id + 1
    for event in events:
        event_id = event.id or 0
        if event_id != expected and (now - event.at).total_seconds() < gap_grace_s:
            break
        taken.append(event)
        expected = event_id + 1
    return taken


class WebhookOutbox:
    """Every query of the webhook outbox, on one session (one transaction)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def fan_out(self, urls: tuple[str, ...], gap_grace_s: float) -> int:
        """Hand new events to each enabled URL's outbox; returns how many rows were made."""
        self._register(urls)
        made = 0
        for url in urls:
            endpoint = self.session.execute(
                select(WebhookEndpoint)
                .where(col(WebhookEndpoint.url) == url, col(WebhookEndpoint.disabled_at).is_(None))
                .with_for_update(skip_locked=True)
            ).scalar_one_or_none()
            if endpoint is None:  # disabled, or another gateway is fanning out to it right now
                continue
            query = select(Event).where(col(Event.id) > endpoint.last_event_id).order_by(col(Event.id))
            events = visible_events(
                list(self.session.execute(query.limit(FAN_OUT_BATCH)).scalars()),
                endpoint.last_event_id,
                utc_now(),
                gap_grace_s,
            )
            if not events:
                continue
            self.session.add_all(
                WebhookDelivery(url=url, event_id=event.id or 0, body=delivery_body(event)) for event in events
            )
            endpoint.last_event_id = events[-1].id or endpoint.last_event_id
            made += len(events)
        self.session.flush()
        return made

    def _register(self, urls: tuple[str, ...]) -> None:
        """A URL seen for the first time starts with the events after the newest one now."""
        newest = self.session.execute(select(func.max(col(Event.id)))).scalar_one() or 0
        insert = postgresql_insert if self.session.get_bind().dialect.name == "postgresql" else sqlite_insert
        for url in urls:
            self.session.execute(insert(WebhookEndpoint).values(url=url, last_event_id=newest).on_conflict_do_nothing())

    def claim_due(self, urls: tuple[str, ...], token: str, lease_s: float, limit: int) -> list[ClaimedDelivery]:
        """Take up to ``limit`` deliveries that are due, under ``token`` for ``lease_s``."""
        now = utc_now()
        due = (
            select(col(WebhookDelivery.id))
            .where(
                col(WebhookDelivery.url).in_(urls),
                col(WebhookDelivery.next_attempt_at) <= now,
                or_(col(WebhookDelivery.claim_token).is_(None), col(WebhookDelivery.lease_expires_at) < now),
            )
            .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = self.session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id).in_(due))
            .values(claim_token=token, lease_expires_at=now + timedelta(seconds=lease_s))
            .returning(*RETURNED)
            .execution_options(synchronize_session=False)
        ).all()
        claimed = [ClaimedDelivery(*row) for row in rows]
        return sorted(claimed, key=lambda delivery: delivery.event_id)

    def delivered(self, delivery_id: int, token: str) -> bool:
        """The receiver took it: the row goes."""
        return self._delete(and_(col(WebhookDelivery.id) == delivery_id, col(WebhookDelivery.claim_token) == token))

    def give_up(self, delivery_id: int, token: str) -> bool:
        """Retried for the whole allowed age: the row goes (logged by the caller)."""
        return self.delivered(delivery_id, token)

    def retry_at(self, delivery_id: int, token: str, next_attempt_at: datetime, error: str) -> bool:
        """A failed attempt: count it and release the claim until ``next_attempt_at``."""
        result = self.session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id) == delivery_id, col(WebhookDelivery.claim_token) == token)
            .values(
                attempts=col(WebhookDelivery.attempts) + 1,
                next_attempt_at=next_attempt_at,
                last_error=error[:1000],
                claim_token=None,
                lease_expires_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def disable(self, url: str, reason: str) -> int:
        """The receiver said 410 Gone: no more deliveries to ``url``; returns how many were dropped."""
        self.session.execute(
            update(WebhookEndpoint)
            .where(col(WebhookEndpoint.url) == url, col(WebhookEndpoint.disabled_at).is_(None))
            .values(disabled_at=utc_now(), disabled_reason=reason[:1000])
            .execution_options(synchronize_session=False)
        )
        result = self.session.execute(delete(WebhookDelivery).where(col(WebhookDelivery.url) == url))
        return int(result.rowcount)  # type: ignore[attr-defined]

    def release(self, token: str) -> int:
        """Give back the claims of a gateway that stops, so another sends them at once."""
        result = self.session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.claim_token) == token)
            .values(claim_token=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def oldest_pending_created_at(self, urls: tuple[str, ...]) -> datetime | None:
        query = select(func.min(col(WebhookDelivery.created_at))).where(col(WebhookDelivery.url).in_(urls))
        oldest: datetime | None = self.session.execute(query).scalar_one()
        return oldest

    def _delete(self, condition: ColumnElement[bool]) -> bool:
        result = self.session.execute(delete(WebhookDelivery).where(condition))
        return bool(result.rowcount)  # type: ignore[attr-defined]
