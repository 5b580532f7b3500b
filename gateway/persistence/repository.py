"""Queries and every state change of an image: paging, claims under a lease, typed results, stats.

Each state change reads the row's counted state, changes it and tells the session's ledger
(``gateway.persistence.ledger``), which updates the stats counters and appends the event in the same
transaction. Nothing else writes ``images.status`` or the columns the counters count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from gateway.persistence.aggregates import StatsSnapshot, read_counters, read_stats
from gateway.persistence.counters import CounterKey, Counters
from gateway.persistence.event_log import EventType
from gateway.persistence.ledger import RowState, ledger_of
from gateway.persistence.models import (
    CaptionModel,
    CaptionStatus,
    Image,
    ImageStatus,
    RejectionCount,
    RejectionReason,
    utc_now,
)
from gateway.persistence.paging import Page, decode_cursor, encode_cursor
from gateway.persistence.search import CaptionQuery, caption_matches
from gateway.persistence.transitions import (
    CpuStagesResult,
    FinalState,
    apply_cpu_stages,
    apply_final,
    apply_release,
    apply_requeue,
)


def made_by_condition(model: CaptionModel) -> ColumnElement[bool]:
    """The image's caption was made by ``model`` (id, revision and precision; never null)."""
    return and_(
        col(Image.caption_model).is_not_distinct_from(model.id),
        col(Image.caption_model_revision).is_not_distinct_from(model.revision),
        col(Image.caption_precision).is_not_distinct_from(model.precision),
    )


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(
        col(Image.status) == ImageStatus.PENDING,
        and_(col(Image.status) == ImageStatus.PROCESSING, col(Image.lease_expires_at) < now),
    )


def _oldest(condition: ColumnElement[bool], limit: int) -> Select[str, datetime, str]:
    # Served by the (status, created_at, id) index: one probe however many images are finished.
    return (
        select(col(Image.id), col(Image.created_at), col(Image.status))
        .where(condition)
        .order_by(col(Image.created_at), col(Image.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


class ImageRepository:
    """Every query the gateway makes, on one session (one transaction)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, image: Image) -> Image:
        """Insert an accepted upload (``pending``): counted, and ``image.accepted`` recorded."""
        self.add_all([image])
        return image

    def add_all(self, images: list[Image]) -> None:
        """``add`` for several uploads in one statement."""
        self.session.add_all(images)
        self.session.flush()
        ledger = ledger_of(self.session)
        for image in images:
            ledger.change(None, RowState.of(image))
            ledger.record(EventType.ACCEPTED, image)

    def get(self, image_id: str) -> Image | None:
        return self.session.get(Image, image_id)

    def list_page(
        self, status: ImageStatus | None, limit: int, cursor: str | None, search: CaptionQuery | None = None
    ) -> Page:
        """Newest first; only ``status`` when given, only captions holding every word of ``search`` when given."""
        rows = list(self.session.execute(self.page_query(status, limit + 1, cursor, search)).scalars())
        has_more = len(rows) > limit
        items = rows[:limit]
        return Page(items=items, next_cursor=encode_cursor(items[-1]) if has_more else None)

    def page_query(
        self, status: ImageStatus | None, limit: int, cursor: str | None, search: CaptionQuery | None
    ) -> Select[Image]:
        """The query of ``list_page``: keyset on (created_at, id), newest first."""
        query = select(Image).order_by(col(Image.created_at).desc(), col(Image.id).desc())
        if status is not None:
            query = query.where(col(Image.status) == status)
        if search is not None:
            query = query.where(caption_matches(self.session, search))
        if cursor is not None:
            created_at, image_id = decode_cursor(cursor)
            query = query.where(
                or_(
                    col(Image.created_at) < created_at,
                    and_(col(Image.created_at) == created_at, col(Image.id) < image_id),
                )
            )
        return query.limit(limit)

    def matches(self, image_id: str, search: CaptionQuery) -> bool:
        """True when the image exists and its caption holds every word of ``search``."""
        query = select(col(Image.id)).where(col(Image.id) == image_id, caption_matches(self.session, search))
        return self.session.execute(query).first() is not None

    def delete(self, image_id: str) -> bool:
        """Remove the row, whatever its status; ``image.deleted`` recorded."""
        image = self._locked(col(Image.id) == image_id)
        if image is None:
            return False
        ledger = ledger_of(self.session)
        ledger.change(RowState.of(image), None)
        ledger.record(EventType.DELETED, image)
        self.session.delete(image)
        self.session.flush()
        return True

    def claim_next(self, token: str, lease_s: float) -> Image | None:
        """Atomically move the oldest claimable image to ``processing`` under ``token``."""
        claimed = self.claim(token, lease_s, limit=1)
        return claimed[0] if claimed else None

    def claim(self, token: str, lease_s: float, limit: int) -> list[Image]:
        """Claim up to ``limit`` claimable images, oldest first (``claim_next`` is ``limit=1``).

        ``FOR UPDATE SKIP LOCKED`` lookups on PostgreSQL (several gateways never take the same
        row), a write-locked transaction on SQLite. A claim whose lease ran out (its process
        died) is claimable again: ``processing`` -> ``processing``, counted once.
        """
        now = utc_now()
        conditions = (
            col(Image.status) == ImageStatus.PENDING,
            and_(col(Image.status) == ImageStatus.PROCESSING, col(Image.lease_expires_at) < now),
        )
        found = sorted(
            (row.created_at, row.id, row.status)
            for condition in conditions
            for row in self.session.execute(_oldest(condition, limit)).all()
        )[:limit]
        old_status = {image_id: status for _created_at, image_id, status in found}
        if not old_status:
            return []
        claimed = self.session.execute(
            update(Image)
            .where(col(Image.id).in_(old_status), _claimable(now))
            .values(
                status=ImageStatus.PROCESSING,
                claim_token=token,
                lease_expires_at=now + timedelta(seconds=lease_s),
                started_at=now,
                attempts=col(Image.attempts) + 1,
            )
            .returning(col(Image.id))
            .execution_options(synchronize_session=False)
        ).scalars()
        query = select(Image).where(col(Image.id).in_(list(claimed))).order_by(col(Image.created_at), col(Image.id))
        images = list(self.session.execute(query.execution_options(populate_existing=True)).scalars())
        ledger = ledger_of(self.session)
        for image in images:
            new = RowState.of(image)
            ledger.change(replace(new, status=old_status[image.id]), new)
        return images

    def renew_lease(self, image_id: str, token: str, lease_s: float) -> bool:
        result = self.session.execute(
            update(Image)
            .where(col(Image.id) == image_id, col(Image.claim_token) == token)
            .values(lease_expires_at=utc_now() + timedelta(seconds=lease_s))
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def save_cpu_stages(self, image_id: str, token: str, result: CpuStagesResult) -> bool:
        """Store the Pillow stages' output while the claim is ours; False when deleted or taken over."""
        return image_id in self.save_cpu_stages_many(token, [(image_id, result)])

    def save_cpu_stages_many(self, token: str, results: list[tuple[str, CpuStagesResult]]) -> set[str]:
        """``save_cpu_stages`` for several images claimed under ``token``; the ids saved."""
        by_id = dict(results)
        images = self._claimed(token, list(by_id))
        for image in images:
            self._apply(image, partial(apply_cpu_stages, result=by_id[image.id]))
        self.session.flush()
        return {image.id for image in images}

    def finish(self, image_id: str, token: str, final: FinalState) -> bool:
        """``processing`` -> ``completed``/``failed`` while the claim is ours, with its event."""
        return image_id in self.finish_many(token, [(image_id, final)])

    def finish_many(self, token: str, finals: list[tuple[str, FinalState]]) -> set[str]:
        """``finish`` for several images claimed under ``token``; the ids finished."""
        by_id, ledger = dict(finals), ledger_of(self.session)
        images = self._claimed(token, list(by_id))
        for image in images:
            final = by_id[image.id]
            self._apply(image, partial(apply_final, final=final))
            completed = final.status == ImageStatus.COMPLETED
            event_type, caption = (EventType.COMPLETED, image.caption_text) if completed else (EventType.FAILED, None)
            ledger.record(event_type, image, caption=caption)
        self.session.flush()
        return {image.id for image in images}

    def release_claims(self, tokens: list[str]) -> int:
        """Give unfinished claims back (graceful stop) so another worker starts them at once."""
        if not tokens:
            return 0
        images = self._all_locked(and_(col(Image.claim_token).in_(tokens), col(Image.status) == ImageStatus.PROCESSING))
        for image in images:
            self._change(image, apply_release)
        return len(images)

    def requeue_failed(self, image_id: str) -> bool:
        """``failed`` -> ``pending`` with the error and the caption cycle count cleared."""
        image = self._locked(and_(col(Image.id) == image_id, col(Image.status) == ImageStatus.FAILED))
        if image is None:
            return False
        self._requeue(image, reset_caption_cycles=True)
        return True

    def requeue_unavailable_captions(self) -> int:
        """Re-queue every image that failed only because the inference service was unavailable."""
        images = self._all_locked(
            and_(col(Image.status) == ImageStatus.FAILED, col(Image.caption_status) == CaptionStatus.UNAVAILABLE)
        )
        for image in images:
            self._requeue(image, reset_caption_cycles=False)
        return len(images)

    def _requeue(self, image: Image, *, reset_caption_cycles: bool) -> None:
        self._change(image, partial(apply_requeue, reset_caption_cycles=reset_caption_cycles))
        ledger_of(self.session).record(EventType.REQUEUED, image)

    def _locked(self, condition: ColumnElement[bool]) -> Image | None:
        query = select(Image).where(condition).with_for_update().execution_options(populate_existing=True)
        return self.session.execute(query).scalars().first()

    def _all_locked(self, condition: ColumnElement[bool]) -> list[Image]:
        query = (
            select(Image)
            .where(condition)
            .order_by(col(Image.id))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return list(self.session.execute(query).scalars())

    def _claimed(self, token: str, image_ids: list[str]) -> list[Image]:
        return self._all_locked(and_(col(Image.id).in_(image_ids), col(Image.claim_token) == token))

    def _change(self, image: Image, change: Callable[[Image], None]) -> None:
        self._apply(image, change)
        self.session.flush()

    def _apply(self, image: Image, change: Callable[[Image], None]) -> None:
        """The one place a locked row changes (``change`` is a typed ``apply_*`` of ``persistence.transitions``):
        its counters follow in the same transaction."""
        old = RowState.of(image)
        change(image)
        ledger_of(self.session).change(old, RowState.of(image))

    def count_unavailable_captions(self) -> int:
        query = select(func.count()).where(
            col(Image.status) == ImageStatus.FAILED, col(Image.caption_status) == CaptionStatus.UNAVAILABLE
        )
        return int(self.session.execute(query).scalar_one())

    def find_caption(self, sha256: str, exclude_id: str, made_by: set[CaptionModel] | None = None) -> Image | None:
        """An image with the same bytes whose caption is done (by one of ``made_by`` when given), if any."""
        query = (
            select(Image)
            .where(
                col(Image.sha256) == sha256,
                col(Image.id) != exclude_id,
                col(Image.caption_status) == CaptionStatus.COMPLETED,
            )
            .limit(1)
        )
        if made_by:
            query = query.where(or_(*(made_by_condition(model) for model in sorted(made_by, key=repr))))
        return self.session.execute(query).scalars().first()

    def count_rejection(self, reason: RejectionReason) -> None:
        self.session.execute(
            update(RejectionCount)
            .where(col(RejectionCount.reason) == reason)
            .values(count=col(RejectionCount.count) + 1)
            .execution_options(synchronize_session=False)
        )

    def count_by_status(self) -> dict[str, int]:
        """Images by status, from the counters (constant time)."""
        counters = Counters(read_counters(self.session))
        return {status.value: counters.count(CounterKey.status(status)) for status in ImageStatus}

    def stats(self) -> StatsSnapshot:
        """Every aggregate of ``GET /api/stats`` except uptime, from counters and index probes."""
        return read_stats(self.session)
