"""``GET /api/stats`` from the counter rows and two index lookups: no scan of the images table."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import Session, col

from gateway.persistence.counters import CounterKey, Counters, Stage, Timing
from gateway.persistence.histogram import estimate_percentile
from gateway.persistence.models import (
    CaptionStatus,
    Image,
    ImageStatus,
    RecaptionStatus,
    RejectionCount,
    RejectionReason,
    StatCounter,
)


@dataclass(frozen=True)
class StatusCounts:
    pending: int
    processing: int
    completed: int
    failed: int


@dataclass(frozen=True)
class ProcessingTimes:
    """Over completed images; null while none completed."""

    avg: float | None
    p50: float | None
    p95: float | None
    max: float | None


NO_TIMES = ProcessingTimes(avg=None, p50=None, p95=None, max=None)


@dataclass(frozen=True)
class StageAverages:
    decode: float | None
    metadata: float | None
    thumbnails: float | None
    caption: float | None


@dataclass(frozen=True)
class CaptionCounts:
    pending: int
    completed: int
    failed: int
    unavailable: int


@dataclass(frozen=True)
class RecaptionCounts:
    """Images by re-captioning state: waiting or in flight, re-made, kept after a failure."""

    queued: int
    done: int
    failed: int


@dataclass(frozen=True)
class RejectionCounts:
    too_large: int
    unsupported_format: int
    unreadable: int
    bad_request: int


@dataclass(frozen=True)
class StatsSnapshot:
    """Every aggregate of ``GET /api/stats`` except this process's uptime."""

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


def _durations(session: Session, counters: Counters, timing: Timing) -> ProcessingTimes:
    count = counters[CounterKey.timing_count(timing)]
    exact_max = _exact_max(session, f"{timing}_ms")
    if count < 0.5 or exact_max is None:
        return NO_TIMES
    buckets = counters.buckets(timing)
    return ProcessingTimes(
        avg=round(counters[CounterKey.timing_sum(timing)] / count, 1),
        p50=round(estimate_percentile(buckets, 0.50, exact_max), 1),
        p95=round(estimate_percentile(buckets, 0.95, exact_max), 1),
        max=round(exact_max, 1),
    )


def _stage_average(counters: Counters, stage: Stage) -> float | None:
    count = counters[CounterKey.stage_count(stage)]
    return round(counters[CounterKey.stage_sum(stage)] / count, 1) if count >= 0.5 else None


def recaption_counts(counters: Counters) -> RecaptionCounts:
    return RecaptionCounts(
        queued=counters.count(CounterKey.recaption(RecaptionStatus.QUEUED)),
        done=counters.count(CounterKey.recaption(RecaptionStatus.DONE)),
        failed=counters.count(CounterKey.recaption(RecaptionStatus.FAILED)),
    )


def read_stats(session: Session) -> StatsSnapshot:
    counters = Counters(read_counters(session))

    def status(value: ImageStatus) -> int:
        return counters.count(CounterKey.status(value))

    def caption(value: CaptionStatus) -> int:
        return counters.count(CounterKey.caption(value))

    rejections: dict[str, int] = {row.reason: row.count for row in session.execute(select(RejectionCount)).scalars()}

    def rejected(reason: RejectionReason) -> int:
        return rejections.get(reason, 0)

    by_status = StatusCounts(
        pending=status(ImageStatus.PENDING),
        processing=status(ImageStatus.PROCESSING),
        completed=status(ImageStatus.COMPLETED),
        failed=status(ImageStatus.FAILED),
    )
    finished = by_status.completed + by_status.failed
    return StatsSnapshot(
        total=by_status.pending + by_status.processing + finished,
        by_status=by_status,
        success_rate=round(by_status.completed / finished, 3) if finished else None,
        failure_rate=round(by_status.failed / finished, 3) if finished else None,
        processing_ms=_durations(session, counters, Timing.PROCESSING),
        end_to_end_ms=_durations(session, counters, Timing.END_TO_END),
        stage_ms_avg=StageAverages(
            decode=_stage_average(counters, Stage.DECODE),
            metadata=_stage_average(counters, Stage.METADATA),
            thumbnails=_stage_average(counters, Stage.THUMBNAILS),
            caption=_stage_average(counters, Stage.CAPTION),
        ),
        captions=CaptionCounts(
            pending=caption(CaptionStatus.PENDING),
            completed=caption(CaptionStatus.COMPLETED),
            failed=caption(CaptionStatus.FAILED),
            unavailable=caption(CaptionStatus.UNAVAILABLE),
        ),
        rejected=RejectionCounts(
            too_large=rejected(RejectionReason.TOO_LARGE),
            unsupported_format=rejected(RejectionReason.UNSUPPORTED_FORMAT),
            unreadable=rejected(RejectionReason.UNREADABLE),
            bad_request=rejected(RejectionReason.BAD_REQUEST),
        ),
        recaption=recaption_counts(counters),
    )
