"""The webhook outbox in the database: fan events out to one row per URL, claim due rows, settle them.

Events are read in id order (their ids commit in order, see ``gateway.persistence.event_log``) and fanned out by
a cursor per URL (``webhook_endpoints.last_event_id``) that moves in the same transaction as the
rows it creates, so an event is handed to every URL exactly once, whichever gateway does it.
Delivery rows are claimed like images (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, under a lease),
so several gateways share the sending and a killed one's claims are taken over.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from gateway.persistence.event_log import event_data, events_after, newest_event_id
from gateway.persistence.models import Event, WebhookDelivery, WebhookEndpoint, utc_now
from gateway.persistence.upsert import upsert_into

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
    """The JSON a receiver gets: ``{"type", "event_id", "data": {...}}``, ``data`` as in ``event_data``."""
    data = asdict(event_data(event))
    return json.dumps({"type": event.type, "event_id": event.id, "data": data}, separators=(",", ":"))


class WebhookOutbox:
    """Every query of the webhook outbox, on one session (one transaction)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def fan_out(self, urls: tuple[str, ...]) -> int:
        """Hand new events to each enabled URL's outbox; returns how many rows were made."""
        self.register(urls)
        made = 0
        for url in urls:
            endpoint = self.session.execute(
                select(WebhookEndpoint)
                .where(col(WebhookEndpoint.url) == url, col(WebhookEndpoint.disabled_at).is_(None))
                .with_for_update(skip_locked=True)
            ).scalar_one_or_none()
            if endpoint is None:  # disabled, or another gateway is fanning out to it right now
                continue
            events = events_after(self.session, endpoint.last_event_id, limit=FAN_OUT_BATCH)
            if not events:
                continue
            self.session.add_all(
                WebhookDelivery(url=url, event_id=event.id or 0, body=delivery_body(event)) for event in events
            )
            endpoint.last_event_id = events[-1].id or endpoint.last_event_id
            made += len(events)
        self.session.flush()
        return made

    def register(self, urls: tuple[str, ...]) -> None:
        """A URL seen for the first time starts with the events after the newest one now."""
        newest = newest_event_id(self.session)
        for url in urls:
            insert = upsert_into(self.session, WebhookEndpoint)
            self.session.execute(insert.values(url=url, last_event_id=newest).on_conflict_do_nothing())

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
