"""Queries: paging, claiming unfinished work under a lease, results, stats aggregates."""

from __future__ import annotations

import base64
import binascii
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from gateway.errors import InvalidQueryError
from gateway.models import (
    STAGES,
    CaptionStatus,
    Image,
    ImageStatus,
    RejectionCount,
    RejectionReason,
    utc_now,
)


@dataclass(frozen=True)
class Page:
    items: list[Image]
    next_cursor: str | None


def encode_cursor(image: Image) -> str:
    raw = f"{image.created_at.isoformat()}|{image.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of ``encode_cursor``; anything else is a 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at_text, image_id = raw.split("|", 1)
        created_at = datetime.fromisoformat(created_at_text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidQueryError("The cursor is malformed; pass back a next_cursor value unchanged.") from exc
    if created_at.tzinfo is None or not image_id:
        raise InvalidQueryError("The cursor is malformed; pass back a next_cursor value unchanged.")
    return created_at, image_id


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(
        col(Image.status) == ImageStatus.PENDING,
        and_(col(Image.status) == ImageStatus.PROCESSING, col(Image.lease_expires_at) < now),
    )


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[round(fraction * 100) - 1]


class ImageRepository:
    """Every query the gateway makes, on one session (one transaction)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, image: Image) -> Image:
        self.session.add(image)
        self.session.flush()
        return image

    def get(self, image_id: str) -> Image | None:
        return self.session.get(Image, image_id)

    def list_page(self, status: ImageStatus | None, limit: int, cursor: str | None) -> Page:
        query = select(Image).order_by(col(Image.created_at).desc(), col(Image.id).desc())
        if status is not None:
            query = query.where(col(Image.status) == status)
        if cursor is not None:
            created_at, image_id = decode_cursor(cursor)
            query = query.where(
                or_(
                    col(Image.created_at) < created_at,
                    and_(col(Image.created_at) == created_at, col(Image.id) < image_id),
                )
            )
        rows = list(self.session.execute(query.limit(limit + 1)).scalars())
        has_more = len(rows) > limit
        items = rows[:limit]
        return Page(items=items, next_cursor=encode_cursor(items[-1]) if has_more else None)

    def delete(self, image_id: str) -> bool:
        result = self.session.execute(delete(Image).where(col(Image.id) == image_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def claim_next(self, token: str, lease_s: float) -> Image | None:
        """Atomically move the oldest claimable image to ``processing`` under ``token``.

        One UPDATE over a ``FOR UPDATE SKIP LOCKED`` sub-select on PostgreSQL (several gateways
        never take the same row), a write-locked UPDATE on SQLite. A claim whose lease ran out
        (its process died) is claimable again.
        """
        now = utc_now()
        candidate = (
            select(col(Image.id))
            .where(_claimable(now))
            .order_by(col(Image.created_at), col(Image.id))
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        claimed = self.session.execute(
            update(Image)
            .where(col(Image.id) == candidate, _claimable(now))
            .values(
                status=ImageStatus.PROCESSING,
                claim_token=token,
                lease_expires_at=now + timedelta(seconds=lease_s),
                started_at=now,
                attempts=col(Image.attempts) + 1,
            )
            .returning(col(Image.id))
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if claimed is None:
            return None
        return self.session.get(Image, claimed, populate_existing=True)

    def renew_lease(self, image_id: str, token: str, lease_s: float) -> bool:
        return self._update_claimed(image_id, token, lease_expires_at=utc_now() + timedelta(seconds=lease_s))

    def save_progress(self, image_id: str, token: str, **values: Any) -> bool:
        """Write pipeline results while the claim is ours; False when the image was deleted or taken over."""
        return self._update_claimed(image_id, token, **values)

    def _update_claimed(self, image_id: str, token: str, **values: Any) -> bool:
        result = self.session.execute(
            update(Image)
            .where(col(Image.id) == image_id, col(Image.claim_token) == token)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def release_claims(self, tokens: list[str]) -> int:
        """Give unfinished claims back (graceful stop) so another worker starts them at once."""
        if not tokens:
            return 0
        result = self.session.execute(
            update(Image)
            .where(col(Image.claim_token).in_(tokens), col(Image.status) == ImageStatus.PROCESSING)
            .values(status=ImageStatus.PENDING, claim_token=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def requeue_failed(self, image_id: str) -> bool:
        """``failed`` -> ``pending`` with the error cleared; False for any other status."""
        return self._requeue(col(Image.id) == image_id) > 0

    def requeue_unavailable_captions(self) -> int:
        """Re-queue every image that failed only because the inference service was unavailable."""
        return self._requeue(col(Image.caption_status) == CaptionStatus.UNAVAILABLE)

    def _requeue(self, condition: ColumnElement[bool]) -> int:
        result = self.session.execute(
            update(Image)
            .where(condition, col(Image.status) == ImageStatus.FAILED)
            .values(
                status=ImageStatus.PENDING,
                error=None,
                caption_error=None,
                caption_status=CaptionStatus.PENDING,
                claim_token=None,
                lease_expires_at=None,
                completed_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def count_unavailable_captions(self) -> int:
        query = select(func.count()).where(
            col(Image.status) == ImageStatus.FAILED, col(Image.caption_status) == CaptionStatus.UNAVAILABLE
        )
        return int(self.session.execute(query).scalar_one())

    def find_caption(self, sha256: str, exclude_id: str) -> Image | None:
        """An image with the same bytes whose caption is done, if any."""
        query = (
            select(Image)
            .where(
                col(Image.sha256) == sha256,
                col(Image.id) != exclude_id,
                col(Image.caption_status) == CaptionStatus.COMPLETED,
            )
            .limit(1)
        )
        return self.session.execute(query).scalars().first()

    def count_rejection(self, reason: RejectionReason) -> None:
        self.session.execute(
            update(RejectionCount)
            .where(col(RejectionCount.reason) == reason)
            .values(count=col(RejectionCount.count) + 1)
            .execution_options(synchronize_session=False)
        )

    def count_by_status(self) -> dict[str, int]:
        rows = self.session.execute(select(col(Image.status), func.count()).group_by(col(Image.status))).all()
        counts = {status.value: 0 for status in ImageStatus}
        counts.update({str(status): int(count) for status, count in rows})
        return counts

    def stats(self) -> dict[str, Any]:
        """Every aggregate of ``GET /api/stats`` except uptime, read from the database."""
        by_status = self.count_by_status()
        caption_rows = self.session.execute(
            select(col(Image.caption_status), func.count()).group_by(col(Image.caption_status))
        ).all()
        captions = {status.value: 0 for status in CaptionStatus}
        captions.update({str(status): int(count) for status, count in caption_rows})
        rejected = {reason.value: 0 for reason in RejectionReason}
        rejected.update({row.reason: row.count for row in self.session.execute(select(RejectionCount)).scalars()})
        stage_columns = [func.avg(getattr(Image, f"{stage}_ms")) for stage in STAGES]
        stage_avgs = self.session.execute(select(*stage_columns)).one()
        durations = sorted(
            float(value)
            for value in self.session.execute(
                select(col(Image.processing_ms)).where(
                    col(Image.status) == ImageStatus.COMPLETED, col(Image.processing_ms).is_not(None)
                )
            ).scalars()
        )
        finished = by_status["completed"] + by_status["failed"]
        return {
            "total": sum(by_status.values()),
            "by_status": by_status,
            "success_rate": round(by_status["completed"] / finished, 3) if finished else None,
            "failure_rate": round(by_status["failed"] / finished, 3) if finished else None,
            "processing_ms": {
                "avg": round(statistics.fmean(durations), 1),
                "p50": round(_percentile(durations, 0.50), 1),
                "p95": round(_percentile(durations, 0.95), 1),
                "max": round(durations[-1], 1),
            }
            if durations
            else {"avg": None, "p50": None, "p95": None, "max": None},
            "stage_ms_avg": {
                stage: None if value is None else round(float(value), 1)
                for stage, value in zip(STAGES, stage_avgs, strict=True)
            },
            "captions": captions,
            "rejected": rejected,
        }
