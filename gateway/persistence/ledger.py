"""What one transaction changes in the stats counters and the event log, written as it commits.

Every state change of an image goes through ``ImageRepository``, which tells the session's
ledger the row's counted state before and after (``RowState``). The ledger sums the difference
of their contributions and, just before the transaction commits, adds it to the counter rows in
one ``INSERT ... ON CONFLICT DO UPDATE SET value = value + excluded.value`` (sorted keys, one
shard per transaction, so concurrent writers on PostgreSQL neither deadlock nor queue on a hot
row), then appends the transaction's events. A rollback drops both with the row change, so the
counters always equal a recount of the images table.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import event
from sqlmodel import Session

from gateway.persistence.counters import CounterKey, Stage, Timing
from gateway.persistence.event_log import EventType, PendingEvent, write_events
from gateway.persistence.histogram import bucket_of
from gateway.persistence.models import (
    CaptionModel,
    CaptionStatus,
    Image,
    ImageStatus,
    RecaptionStatus,
    StatCounter,
    utc_now,
)
from gateway.persistence.upsert import upsert_into

POSTGRES_SHARDS = 16
LEDGER_KEY = "gateway_ledger"


@dataclass(frozen=True)
class RowState:
    """The columns of an image row that the counters count."""

    status: ImageStatus
    caption_status: CaptionStatus
    recaption_status: RecaptionStatus | None = None
    decode_ms: float | None = None
    metadata_ms: float | None = None
    thumbnails_ms: float | None = None
    caption_ms: float | None = None
    processing_ms: float | None = None
    end_to_end_ms: float | None = None

    @classmethod
    def of(cls, image: Image) -> RowState:
        return cls(
            status=image.status,
            caption_status=image.caption_status,
            recaption_status=image.recaption_status,
            decode_ms=image.decode_ms,
            metadata_ms=image.metadata_ms,
            thumbnails_ms=image.thumbnails_ms,
            caption_ms=image.caption_ms,
            processing_ms=image.processing_ms,
            end_to_end_ms=image.end_to_end_ms,
        )

    def stage_ms(self, stage: Stage) -> float | None:
        value: float | None = getattr(self, f"{stage}_ms")
        return value


def contribution(state: RowState) -> dict[str, float]:
    """The counter values one row adds, by counter key; a stat is the sum over every row."""
    values: dict[CounterKey, float] = {
        CounterKey.status(state.status): 1.0,
        CounterKey.caption(state.caption_status): 1.0,
    }
    if state.recaption_status is not None:
        values[CounterKey.recaption(state.recaption_status)] = 1.0
    for stage in Stage:
        duration_ms = state.stage_ms(stage)
        if duration_ms is not None:
            values[CounterKey.stage_sum(stage)] = duration_ms
            values[CounterKey.stage_count(stage)] = 1.0
    if state.status == ImageStatus.COMPLETED:
        for timing, duration_ms in ((Timing.PROCESSING, state.processing_ms), (Timing.END_TO_END, state.end_to_end_ms)):
            if duration_ms is not None:
                values[CounterKey.timing_sum(timing)] = duration_ms
                values[CounterKey.timing_count(timing)] = 1.0
                values[CounterKey.timing_bucket(timing, bucket_of(duration_ms))] = 1.0
    return {str(key): value for key, value in values.items()}


@dataclass
class Ledger:
    """Counter deltas and events of one session's transaction, written in ``before_commit``."""

    deltas: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    events: list[PendingEvent] = field(default_factory=list)

    def change(self, old: RowState | None, new: RowState | None) -> None:
        for key, value in (contribution(old) if old else {}).items():
            self.deltas[key] -= value
        for key, value in (contribution(new) if new else {}).items():
            self.deltas[key] += value

    def move(self, old_key: CounterKey | None, new_key: CounterKey, count: int) -> None:
        """``count`` rows changed by one bulk ``UPDATE`` in a single counted column: from ``old_key`` to ``new_key``."""
        if old_key is not None:
            self.deltas[str(old_key)] -= count
        self.deltas[str(new_key)] += count

    def record(
        self,
        event_type: EventType,
        image: Image,
        caption: str | None = None,
        *,
        model: CaptionModel | None = None,
        previous_model: CaptionModel | None = None,
    ) -> None:
        """Queue ``event_type`` for ``image`` as the change left it (a deleted image: status "deleted")."""
        deleted = event_type is EventType.DELETED
        self.events.append(
            PendingEvent(
                type=event_type,
                image_id=image.id,
                status="deleted" if deleted else image.status,
                caption=caption,
                caption_status=None if deleted else image.caption_status,
                error=None if deleted else image.error,
                at=utc_now(),
                model=model.as_json() if model else None,
                previous_model=previous_model.as_json() if previous_model else None,
            )
        )

    def flush(self, session: Session) -> None:
        deltas = {key: value for key, value in sorted(self.deltas.items()) if value != 0}
        self.deltas.clear()
        if deltas:
            _add_to_counters(session, deltas)
        if self.events:
            write_events(session, self.events)
            self.events = []


def ledger_of(session: Session) -> Ledger:
    """The session's ledger, created (and hooked to its commit) on first use."""
    ledger: Ledger | None = session.info.get(LEDGER_KEY)
    if ledger is None:
        ledger = session.info[LEDGER_KEY] = Ledger()
        event.listen(session, "before_commit", lambda committing: ledger.flush(committing))
        event.listen(session, "after_rollback", lambda _session: _forget(ledger))
    return ledger


def _forget(ledger: Ledger) -> None:
    ledger.deltas.clear()
    ledger.events.clear()


def _add_to_counters(session: Session, deltas: dict[str, float]) -> None:
    is_postgresql = session.connection().dialect.name == "postgresql"
    shard = random.randrange(POSTGRES_SHARDS) if is_postgresql else 0  # noqa: S311 - load spreading, not security
    rows = [{"key": key, "shard": shard, "value": value} for key, value in deltas.items()]
    statement = upsert_into(session, StatCounter).values(rows)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["key", "shard"], set_={"value": StatCounter.value + statement.excluded.value}
        )
    )
