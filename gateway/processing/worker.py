"""Background processing: bounded concurrent loops that claim images from the database.

State lives in the database. Loops wake at once when an upload arrives and poll as a
fallback; a claim is held under a renewed lease, so a dead process's images are taken over.
On start every unfinished image is resumed; on a graceful stop held claims are given back.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from functools import partial

import structlog
from sqlmodel import Session

from gateway.errors import StorageUnavailableError
from gateway.persistence.models import Image
from gateway.persistence.repository import ImageRepository
from gateway.processing.leases import give_back, idle, keep_renewing
from gateway.processing.pipeline import ImagePipeline
from gateway.processing.services import ProcessingServices
from servicekit.background import BackgroundLoops

log = structlog.get_logger("gateway.worker")


class Worker:
    """``settings.workers`` claim loops plus a watcher that re-queues captions once inference is back."""

    def __init__(self, services: ProcessingServices, pipeline: ImagePipeline) -> None:
        self.services = services
        self.pipeline = pipeline
        self._wakeup = asyncio.Event()
        self._loops = BackgroundLoops("gateway.worker")
        self._stopping = False
        # Tokens of claims this process may hold: added before a claim is made (so a stop that
        # lands while the claim commits still gives it back), removed once the image is saved.
        self._held_tokens: set[str] = set()

    @property
    def loop_names(self) -> list[str]:
        """The claim and re-queue loops running now (none with ``GATEWAY_WORKERS=0`` or after ``stop``)."""
        return self._loops.names

    def notify(self) -> None:
        """Wake idle loops: new work may be pending."""
        self._wakeup.set()

    async def start(self) -> None:
        if self.services.settings.workers == 0:
            log.warning("processing_paused", reason="GATEWAY_WORKERS=0: uploads are accepted but not processed")
            return
        for number in range(self.services.settings.workers):
            self._loops.start(f"gateway-worker-{number}", self._claim_loop)
        self._loops.start("gateway-requeue-watcher", self._requeue_loop)
        log.info("workers_started", workers=self.services.settings.workers)

    async def stop(self) -> None:
        """End every loop, then give back the claims of images still in flight."""
        self._stopping = True
        await self._loops.stop()
        await give_back(
            self.services.database,
            self._held_tokens,
            lambda session, tokens: ImageRepository(session).release_claims(tokens),
            log,
            "claims",
        )

    async def _claim_loop(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            token = uuid.uuid4().hex
            self._held_tokens.add(token)
            try:
                image = await self.services.database.write(partial(self._claim, token=token))
            except StorageUnavailableError as exc:
                self._held_tokens.discard(token)
                log.warning("claim_failed", error=exc.detail)
                await asyncio.sleep(self.services.settings.poll_interval_s)
                continue
            except Exception:  # a bug must not end the loop: log it and keep polling
                self._held_tokens.discard(token)
                log.exception("claim_crashed")
                await asyncio.sleep(self.services.settings.poll_interval_s)
                continue
            if image is None:
                self._held_tokens.discard(token)
                await idle(self._wakeup, self.services.settings.poll_interval_s)
                continue
            self._wakeup.set()  # there may be more: let an idle sibling look too
            await self._process(image, token)

    def _claim(self, session: Session, token: str) -> Image | None:
        return ImageRepository(session).claim_next(token, self.services.settings.lease_s)

    async def _process(self, image: Image, token: str) -> None:
        self.services.metrics.images_in_flight.inc()
        renewer = asyncio.create_task(
            keep_renewing(self.services.database, self._lease_renewal(image.id, token), self.services.settings.lease_s)
        )
        try:
            await self.pipeline.run(image, token)
            self._held_tokens.discard(token)  # saved: the image is final, or pending again for a retry
        except StorageUnavailableError as exc:
            log.warning("image_postponed", image_id=image.id, error=exc.detail)
        except Exception:
            log.exception("image_crashed", image_id=image.id)
        finally:
            # Cancelled (a stop): the token stays held, so stop() gives the claim back.
            self.services.metrics.images_in_flight.dec()
            renewer.cancel()
            await asyncio.wait([renewer])

    async def _requeue_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.services.settings.inference_probe_interval_s)
            try:
                waiting = await self.services.database.read(
                    lambda session: ImageRepository(session).count_unavailable_captions()
                )
                if not waiting:
                    continue
                readiness = await self.services.inference.readiness()
                if not readiness.ready:
                    continue
                requeued = await self.services.database.write(
                    lambda session: ImageRepository(session).requeue_unavailable_captions()
                )
            except StorageUnavailableError as exc:
                log.warning("requeue_check_failed", error=exc.detail)
                continue
            if requeued:
                self.services.metrics.requeued.labels("inference_ready").inc(requeued)
                log.info("images_requeued", count=requeued, trigger="inference_ready")
                self.notify()

    def _lease_renewal(self, image_id: str, token: str) -> Callable[[Session], bool]:
        lease_s = self.services.settings.lease_s
        return lambda session: ImageRepository(session).renew_lease(image_id, token, lease_s)
