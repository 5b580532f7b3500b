"""Re-captioning in the database: queue captions, claim them under a lease, save or note the failure.

The state is the image's ``recaption_status`` (``queued`` -> ``done`` | ``failed``), counted by the
ledger like every other counted column, so ``/api/stats`` reads it in constant time. A claim is
the image's ``claim_token`` and ``lease_expires_at`` on a ``completed`` row (the pipeline only
claims ``pending`` and ``processing`` rows, so the two never meet): the caption shown stays until
the new one is saved, and a gateway killed mid-caption leaves a claim that expires and is taken over.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from sqlalchemy import and_, not_, or_, select, update
from sqlmodel import col

from gateway.persistence.counters import CounterKey
from gateway.persistence.event_log import EventType
from gateway.persistence.ledger import ledger_of
from gateway.persistence.models import CaptionModel, CaptionStatus, Image, ImageStatus, RecaptionStatus, utc_now
from gateway.persistence.repository import ImageRepository, made_by_condition
from gateway.persistence.transitions import RecaptionOutcome, apply_recaption, apply_recaption_release


class RecaptionRepository(ImageRepository):
    """The queries of re-captioning, on one session; every row change goes through ``_apply``."""

    def queue_recaptions(self, current: CaptionModel | None) -> int:
        """Queue every captioned image not made by ``current`` (every one when ``None``); how many were queued.

        Images already queued stay queued and are not counted again. One ``UPDATE`` per previous
        state, so the counters move by the row counts without loading any row.
        """
        target = and_(
            col(Image.status) == ImageStatus.COMPLETED,
            col(Image.caption_status) == CaptionStatus.COMPLETED,
            or_(col(Image.recaption_status).is_(None), col(Image.recaption_status) != RecaptionStatus.QUEUED),
        )
        if current is not None:
            target = and_(target, not_(made_by_condition(current)))
        ledger, queued = ledger_of(self.session), 0
        for previous in (None, RecaptionStatus.DONE, RecaptionStatus.FAILED):
            state = (
                col(Image.recaption_status).is_(None) if previous is None else col(Image.recaption_status) == previous
            )
            result = self.session.execute(
                update(Image)
                .where(target, state)
                .values(recaption_status=RecaptionStatus.QUEUED, recaption_error=None)
                .execution_options(synchronize_session=False)
            )
            count = int(result.rowcount)  # type: ignore[attr-defined]
            ledger.move(
                None if previous is None else CounterKey.recaption(previous),
                CounterKey.recaption(RecaptionStatus.QUEUED),
                count,
            )
            queued += count
        return queued

    def claim_recaptions(self, token: str, lease_s: float, limit: int = 1) -> list[Image]:
        """Claim up to ``limit`` queued images, oldest first, whose re-caption nobody holds (or whose lease ran out)."""
        now = utc_now()
        claimable = and_(
            col(Image.recaption_status) == RecaptionStatus.QUEUED,
            col(Image.status) == ImageStatus.COMPLETED,
            or_(col(Image.claim_token).is_(None), col(Image.lease_expires_at) < now),
        )
        oldest = (
            select(col(Image.id))
            .where(claimable)
            .order_by(col(Image.created_at), col(Image.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list(self.session.execute(oldest).scalars())
        if not ids:
            return []
        claimed = self.session.execute(
            update(Image)
            .where(col(Image.id).in_(ids), claimable)
            .values(claim_token=token, lease_expires_at=now + timedelta(seconds=lease_s))
            .returning(col(Image.id))
            .execution_options(synchronize_session=False)
        ).scalars()
        query = select(Image).where(col(Image.id).in_(list(claimed))).order_by(col(Image.created_at), col(Image.id))
        return list(self.session.execute(query.execution_options(populate_existing=True)).scalars())

    def finish_recaption(self, image_id: str, token: str, outcome: RecaptionOutcome) -> bool:
        """Save a re-caption while the claim is ours; a new caption records ``image.caption_updated``."""
        image = self._locked(
            and_(
                col(Image.id) == image_id,
                col(Image.claim_token) == token,
                col(Image.recaption_status) == RecaptionStatus.QUEUED,
            )
        )
        if image is None:
            return False
        previous = image.made_by
        self._change(image, partial(apply_recaption, outcome=outcome))
        if outcome.text is not None:
            ledger_of(self.session).record(
                EventType.CAPTION_UPDATED,
                image,
                caption=image.caption_text,
                model=outcome.model,
                previous_model=previous,
            )
        return True

    def release_recaption_claims(self, tokens: list[str]) -> int:
        """Give unfinished re-caption claims back (graceful stop): queued again, free at once."""
        if not tokens:
            return 0
        images = self._all_locked(
            and_(
                col(Image.claim_token).in_(tokens),
                col(Image.status) == ImageStatus.COMPLETED,
                col(Image.recaption_status) == RecaptionStatus.QUEUED,
            )
        )
        for image in images:
            self._change(image, apply_recaption_release)
        return len(images)

    def uploads_waiting(self) -> bool:
        """Whether an upload waits for a worker: re-captioning then steps aside (one index probe)."""
        query = select(col(Image.id)).where(col(Image.status) == ImageStatus.PENDING).limit(1)
        return self.session.execute(query).first() is not None
