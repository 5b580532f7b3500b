"""Re-captioning in the background: a few paced loops that claim queued captions and re-make them.

Fair to uploads: at most ``GATEWAY_RECAPTION_CONCURRENCY`` re-captions in flight per gateway,
at most ``GATEWAY_RECAPTION_PER_S`` started per second, none started while an upload waits for a
worker or while no inference replica is ready. Durable: the queue is the images table
(``gateway.persistence.recaptions``); a claim is held under a renewed lease, so a killed gateway's
claims are taken over when their lease runs out, and a stopped gateway gives its claims back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import structlog
from sqlmodel import Session

from gateway.errors import CaptionRejectedError, InferenceUnavailableError, StorageUnavailableError
from gateway.persistence.models import Image
from gateway.persistence.recaptions import RecaptionRepository
from gateway.persistence.transitions import RecaptionOutcome
from gateway.processing.leases import give_back, idle, keep_renewing
from gateway.processing.services import ProcessingServices
from gateway.replicas.client import made_by
from servicekit.background import BackgroundLoops

log = structlog.get_logger("gateway.recaptioner")


class Recaptioner:
    """``settings.recaption_concurrency`` paced loops over the re-caption queue."""

    def __init__(self, services: ProcessingServices) -> None:
        self.services = services
        self._wakeup = asyncio.Event()
        self._loops = BackgroundLoops("gateway.recaptioner")
        self._stopping = False
        self._held_tokens: set[str] = set()  # added before a claim is made, removed once it is saved or given back
        self._pace_lock = asyncio.Lock()
        self._next_start = 0.0

    def notify(self) -> None:
        """Wake idle loops: captions were queued."""
        self._wakeup.set()

    def start(self) -> None:
        for number in range(self.services.settings.recaption_concurrency):
            self._loops.start(f"gateway-recaption-{number}", self._loop)

    async def stop(self) -> None:
        """End every loop, then give back the claims still held (queued again, free for any gateway)."""
        self._stopping = True
        await self._loops.stop()
        await give_back(
            self.services.database,
            self._held_tokens,
            lambda session, tokens: RecaptionRepository(session).release_recaption_claims(tokens),
            log,
            "recaption_claims",
        )

    async def _loop(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            try:
                claimed = await self._claim()
            except StorageUnavailableError as exc:
                log.warning("recaption_claim_failed", error=exc.detail)
                claimed = None
            except Exception:  # a bug must not end the loop: log it and keep polling
                log.exception("recaption_claim_crashed")
                claimed = None
            if claimed is None:
                await idle(self._wakeup, self.services.settings.poll_interval_s)
                continue
            await self._recaption(*claimed)

    async def _claim(self) -> tuple[Image, str] | None:
        """The oldest queued image under a new claim, unless uploads wait or no replica is ready."""
        if not self.services.inference.pool.readiness().ready:
            return None
        await self._pace()
        if await self.services.database.read(lambda session: RecaptionRepository(session).uploads_waiting()):
            return None
        token = uuid.uuid4().hex
        self._held_tokens.add(token)  # before the claim: a stop landing while it commits still gives it back
        images = await self.services.database.write(
            lambda session: RecaptionRepository(session).claim_recaptions(token, self.services.settings.lease_s)
        )
        if not images:
            self._held_tokens.discard(token)
            return None
        return images[0], token

    async def _pace(self) -> None:
        """At most ``recaption_per_s`` claims a second from this gateway."""
        if self.services.settings.recaption_per_s <= 0:
            return
        async with self._pace_lock:
            now = time.monotonic()
            if self._next_start > now:
                await asyncio.sleep(self._next_start - now)
            self._next_start = max(now, self._next_start) + 1 / self.services.settings.recaption_per_s

    async def _recaption(self, image: Image, token: str) -> None:
        renewer = asyncio.create_task(
            keep_renewing(self.services.database, self._lease_renewal(image.id, token), self.services.settings.lease_s)
        )
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(image_id=image.id, request_id=image.request_id):
            try:
                outcome = await self._caption(image)
                if outcome is None:  # no replica answers: queued again, retried once one is ready
                    await self.services.database.write(
                        lambda session: RecaptionRepository(session).release_recaption_claims([token])
                    )
                    self._held_tokens.discard(token)
                    log.info("recaption_postponed", reason="no inference replica is ready")
                    return
                saved = await self.services.database.write(
                    lambda session: RecaptionRepository(session).finish_recaption(image.id, token, outcome)
                )
                self._held_tokens.discard(token)
                self._log(image, outcome, saved, round((time.perf_counter() - started) * 1000, 2))
            except StorageUnavailableError as exc:  # the claim stays held: a stop gives it back, else it expires
                log.warning("recaption_not_saved", error=exc.detail)
            except Exception:
                log.exception("recaption_crashed")
            finally:
                renewer.cancel()
                await asyncio.wait([renewer])

    async def _caption(self, image: Image) -> RecaptionOutcome | None:
        """The new caption, or the failure to note; ``None`` when no replica answers at all."""
        try:
            jpeg = await self.services.storage.read_thumbnail(image.id, "medium")
            response = await self.services.inference.caption(
                jpeg, "image/jpeg", image.request_id, self.services.caption_params
            )
        except InferenceUnavailableError as exc:
            if not (await self.services.inference.readiness(image.request_id)).answering:
                return None
            return RecaptionOutcome(error=f"Caption unavailable: {exc.detail}")
        except CaptionRejectedError as exc:
            return RecaptionOutcome(error=f"Caption refused: {exc.detail}")
        except FileNotFoundError:
            return RecaptionOutcome(error="The medium thumbnail is missing from storage.")
        return RecaptionOutcome(text=response.caption, model=made_by(response))

    def _log(self, image: Image, outcome: RecaptionOutcome, saved: bool, duration_ms: float) -> None:
        if not saved:
            log.info("recaption_discarded", reason="the image was deleted or its claim was taken over")
            return
        self.services.metrics.recaptions.labels(outcome.status.value).inc()
        if outcome.model is not None:
            previous = image.made_by
            log.info(
                "recaption_saved",
                duration_ms=duration_ms,
                model=outcome.model.describe(),
                previous_model=previous.describe() if previous else None,
            )
        else:
            log.warning("recaption_failed", duration_ms=duration_ms, error=outcome.error)

    def _lease_renewal(self, image_id: str, token: str) -> Callable[[Session], bool]:
        lease_s = self.services.settings.lease_s
        return lambda session: RecaptionRepository(session).renew_lease(image_id, token, lease_s)
