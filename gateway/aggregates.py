"""``GET /api/stats`` from the counter rows and two index lookups: no scan of the images table."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import Session, col

from gateway.histogram import estimate_percentile
from gateway.models import STAGES, CaptionStatus, Image, ImageStatus, RejectionCount, RejectionReason, StatCounter


@dataclass(frozen=True)
class Durations:
    """avg/p50/p95/max in ms over completed images; all None while none completed."""

    avg: float | None = None
    p50: float | None = None
    p95: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class StatsSnapshot:
    """Every aggregate of ``GET /api/stats`` except uptime; counts keyed by enum value."""

    total: int
    by_status: dict[str, int]
    success_rate: float | None
    failure_rate: float | None
    processing_ms: Durations
    end_to_end_ms: Durations
    stage_ms_avg: dict[str, float | None]
    captions: dict[str, int]
    rejected: dict[str, int]


def read_counters(session: Session) -> dict[str, float]:
    """Each counter summed over its shards."""
    rows = session.execute(select(col(StatCounter.key), func.sum(col(StatCounter.value))).group_by(StatCounter.key))
    return {str(key): float(value) for key, value in rows.all()}


def _exact_max(session: Session, column: str) -> float | None:
    # An index on (status, <column>) makes this a single index probe at any table size.
    duration = getattr(Image, column)
    query = (
        select(duration)
        .where(col(Image.status) == ImageStatus.COMPLETED, duration.is_not(None))
        .order_by(duration.desc())
        .limit(1)
    )
    value = session.execute(query).scalar_one_or_none()
    return None if value is None else float(value)


def _durations(session: Session, counters: dict[str, float], name: str) -> Durations:
    count = counters.get(f"{name}.n", 0.0)
    exact_max = _exact_max(session, f"{name}_ms")
    if count < 0.5 or exact_max is None:
        return Durations()
    prefix = f"{name}.h"
    buckets = {int(key[len(prefix) :]): value for key, value in counters.items() if key.startswith(prefix)}
    return Durations(
        avg=round(counters.get(f"{name}.sum", 0.0) / count, 1),
        p50=round(estimate_percentile(buckets, 0.50, exact_max), 1),
        p95=round(estimate_percentile(buckets, 0.95, exact_max), 1),
        max=round(exact_max, 1),
    )


def _count(counters: dict[str, float], key: str) -> int:
    return round(counters.get(key, 0.0))


def read_stats(session: Session) -> StatsSnapshot:
    counters = read_counters(session)
    by_status = {status.value: _count(counters, f"status.{status.value}") for status in ImageStatus}
    captions = {status.value: _count(counters, f"caption.{status.value}") for status in CaptionStatus}
    rejected = {reason.value: 0 for reason in RejectionReason}
    rejected.update({row.reason: row.count for row in session.execute(select(RejectionCount)).scalars()})
    stage_ms_avg: dict[str, float | None] = {}
    for stage in STAGES:
        count = counters.get(f"stage_n.{stage}", 0.0)
        stage_ms_avg[stage] = round(counters[f"stage_sum.{stage}"] / count, 1) if count >= 0.5 else None
    finished = by_status["completed"] + by_status["failed"]
    return StatsSnapshot(
        total=sum(by_status.values()),
        by_status=by_status,
        success_rate=round(by_status["completed"] / finished, 3) if finished else None,
        failure_rate=round(by_status["failed"] / finished, 3) if finished else None,
        processing_ms=_durations(session, counters, "processing"),
        end_to_end_ms=_durations(session, counters, "end_to_end"),
        stage_ms_avg=stage_ms_avg,
        captions=captions,
        rejected=rejected,
    )
