"""A pool of inference replicas: which one gets the next caption, which ones are out, which exist.

Each caption goes to the ready replica with the fewest requests in flight (ties at random). A
replica whose request fails is ejected for a back-off that doubles with each ejection in a row;
once it is over, the replica is on trial: one request at a time until one succeeds (half-open).
Only requests sent since its latest ejection end or extend it: one sent before, still in flight
then, neither ends nor extends it, whatever it answers.
Readiness (and the model's ``max_new_tokens`` limit) is probed in the background; entries
``dns+http://NAME:PORT`` are resolved again every few seconds and each address is a replica.
HTTP stays in the inference client, which hands the pool a probe function: the pool keeps state.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from functools import partial

import structlog

from gateway.errors import InferenceUnavailableError, ReplicaModelMissingError
from gateway.metrics import GatewayMetrics
from gateway.persistence.models import CaptionModel
from gateway.replicas.discovery import Resolver, replica_url, resolve_addresses
from gateway.replicas.replica import (
    InferenceReadiness,
    Probe,
    Replica,
    ReplicaLease,
    ReplicaProbe,
    ReplicaState,
    ReplicaView,
    Strategy,
)
from gateway.settings import GatewaySettings, InferenceEntry
from servicekit.background import BackgroundLoops

log = structlog.get_logger("gateway.inference_pool")
MAX_EJECT_FOR_RETRY_AFTER_S = 60.0
RESOLVE_TIMEOUT_S = 5.0
__all__ = [
    "CaptionTokensUnservableError",
    "InferencePool",
    "InferenceReadiness",
    "ReplicaLease",
    "ReplicaProbe",
    "ReplicaState",
    "ReplicaView",
    "Strategy",
]


class CaptionTokensUnservableError(Exception):
    """GATEWAY_CAPTION_MAX_NEW_TOKENS is more than a reachable replica's model can serve (refused at start)."""


class InferencePool:
    """The replicas behind ``GATEWAY_INFERENCE_URL`` and the choice among them."""

    def __init__(
        self,
        settings: GatewaySettings,
        probe: Probe,
        *,
        metrics: GatewayMetrics | None = None,
        resolver: Resolver = resolve_addresses,
        strategy: Strategy = Strategy.LEAST_IN_FLIGHT,
    ) -> None:
        self._settings = settings
        self._entries = settings.inference_entries
        self._probe = probe
        self._metrics = metrics
        self._resolver = resolver
        self._strategy = strategy
        self._random = random.Random()  # noqa: S311 - spreads ties among replicas; no secret involved
        self._cursor = 0
        self._replicas: dict[str, Replica] = {}
        self._loops = BackgroundLoops("gateway.inference_pool")
        for entry in self._entries:
            if not entry.discover and entry.url not in self._replicas:
                self._add(Replica(entry.url))

    @property
    def urls(self) -> list[str]:
        return list(self._replicas)

    async def start(self) -> None:
        """Resolve, probe every replica once, refuse an unservable token setting, then keep probing."""
        await self.resolve()
        await self.refresh()
        self._refuse_unservable_tokens()
        readiness = self.readiness()
        log.info("inference_pool_started", replicas=self.urls, ready=readiness.ready, detail=readiness.detail)
        self._loops.start(
            "inference-probe", partial(self._every, self._settings.inference_probe_interval_s, self.refresh)
        )
        if any(entry.discover for entry in self._entries):
            self._loops.start(
                "inference-discovery", partial(self._every, self._settings.inference_resolve_interval_s, self.resolve)
            )

    async def stop(self) -> None:
        await self._loops.stop()

    def acquire(self, tried: set[str]) -> ReplicaLease | None:
        """A lease on the next replica for a request not yet tried on ``tried``; ``None`` when none is left.

        With no ready replica, the first request of a round still goes out (today's behaviour with
        one URL): to a replica not known to be out, else to the one whose ejection ends first.
        """
        now = time.monotonic()
        candidates = [r for r in self._replicas.values() if r.url not in tried and r.choosable(now)]
        if candidates:
            replica = self._choose(candidates)
        elif not tried and (fallback := [r for r in self._replicas.values() if r.serviceable]):
            replica = min(fallback, key=lambda r: (r.ejected(now), r.ejected_until, r.in_flight))
        else:
            return None
        replica.in_flight += 1
        if self._metrics is not None:
            self._metrics.replica_requests.labels(replica.url).inc()
            self._metrics.replica_in_flight.labels(replica.url).set(replica.in_flight)
        return ReplicaLease(replica, replica.ejections)

    def release(self, lease: ReplicaLease, failure: InferenceUnavailableError | None) -> None:
        """End a request; its outcome counts only if no ejection came since it was acquired.

        A success then ends the replica's ejection (its trial passed); a failure ejects it unless it
        is out already. A request sent before the latest ejection neither ends nor extends it.
        """
        replica = lease.replica
        replica.in_flight -= 1
        if self._metrics is not None:
            self._metrics.replica_in_flight.labels(replica.url).set(replica.in_flight)
        if failure is None:
            if lease.current:
                replica.trust()
        else:
            replica.load_failed = replica.load_failed or isinstance(failure, ReplicaModelMissingError)
            self._count_failure(replica)
            if lease.current:
                self._eject(replica, failure)
        if replica.vanished and replica.in_flight == 0:
            self._drop(replica)

    def unservable_reason(self) -> str | None:
        """One sentence when replicas exist but none can serve for a while (model failed or too small)."""
        replicas = [replica for replica in self._replicas.values() if not replica.vanished]
        if not replicas or any(r.serviceable for r in replicas):
            return None
        return "No inference replica can serve captions: " + "; ".join(f"{r.url}: {r.view(0).detail}" for r in replicas)

    def model_of(self, url: str) -> CaptionModel | None:
        """The model a replica said it serves at its latest probe."""
        replica = self._replicas.get(url)
        return replica.model if replica else None

    def served_models(self) -> set[CaptionModel]:
        """The models the ready replicas serve (several while a switch rolls through them)."""
        now = time.monotonic()
        ready = (r for r in self._replicas.values() if r.view(now).state is ReplicaState.READY)
        return {replica.model for replica in ready if replica.model is not None}

    def readiness(self) -> InferenceReadiness:
        now = time.monotonic()
        views = tuple(replica.view(now) for replica in self._replicas.values())
        ready = [view for view in views if view.state is ReplicaState.READY]
        answering = any(replica.serviceable and replica.probed_ready for replica in self._replicas.values())
        if not views:
            names = ", ".join(entry.raw for entry in self._entries)
            return InferenceReadiness(False, f"No inference replica is known: {names} resolved to no address.")
        if len(views) == 1:
            return InferenceReadiness(bool(ready), views[0].detail, views, answering)
        if ready:
            detail = f"{len(ready)} of {len(views)} inference replicas are ready."
            return InferenceReadiness(True, detail, views, answering)
        return InferenceReadiness(False, f"None of the {len(views)} inference replicas is ready.", views, answering)

    async def refresh(self, request_id: str | None = None) -> None:
        """Probe every replica now, concurrently."""
        replicas = list(self._replicas.values())
        probes = await asyncio.gather(*(self._probe(replica.url, request_id) for replica in replicas))
        for replica, probe in zip(replicas, probes, strict=True):
            self._apply(replica, probe)

    async def resolve(self) -> None:
        """Resolve every ``dns+`` entry: new addresses become replicas, vanished ones leave once idle."""
        found: dict[str, str] = {}
        for entry in (entry for entry in self._entries if entry.discover):
            addresses = await self._addresses(entry)
            if addresses is None:  # resolution failed: keep what we have
                found.update({url: entry.raw for url in self._replicas if url not in found})
                continue
            found.update({replica_url(entry, address): entry.raw for address in addresses})
        static = {entry.url for entry in self._entries if not entry.discover}
        new = [Replica(url) for url in found if url not in self._replicas]
        for replica in new:
            self._add(replica)
            log.info("inference_replica_added", replica=replica.url, entry=found[replica.url])
        for replica in list(self._replicas.values()):
            replica.vanished = replica.vanished and replica.url not in found  # back in DNS before it left
            if replica.url not in found and replica.url not in static and not replica.vanished:
                replica.vanished = True
                log.info("inference_replica_vanished", replica=replica.url)
                if replica.in_flight == 0:
                    self._drop(replica)
        probes = await asyncio.gather(*(self._probe(replica.url, None) for replica in new))
        for replica, probe in zip(new, probes, strict=True):
            self._apply(replica, probe)

    async def _addresses(self, entry: InferenceEntry) -> list[str] | None:
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                return await self._resolver(entry.host, entry.port)
        except (OSError, TimeoutError) as exc:
            log.warning("inference_resolve_failed", entry=entry.raw, error=str(exc) or type(exc).__name__)
            return None

    def _choose(self, candidates: list[Replica]) -> Replica:
        if self._strategy is Strategy.ROUND_ROBIN:
            order = list(self._replicas.values())
            for step in range(len(order)):
                replica = order[(self._cursor + step) % len(order)]
                if replica in candidates:
                    self._cursor = (self._cursor + step + 1) % len(order)
                    return replica
        fewest = min(replica.in_flight for replica in candidates)
        return self._random.choice([replica for replica in candidates if replica.in_flight == fewest])

    def _count_failure(self, replica: Replica) -> None:
        if self._metrics is not None:
            self._metrics.replica_failures.labels(replica.url).inc()

    def _eject(self, replica: Replica, failure: InferenceUnavailableError) -> None:
        now = time.monotonic()
        if replica.ejected(now):
            return
        back_off_s = min(
            self._settings.inference_eject_s * 2**replica.ejections_in_a_row, self._settings.inference_eject_max_s
        )
        if failure.retry_after_s is not None:
            back_off_s = max(back_off_s, min(failure.retry_after_s, MAX_EJECT_FOR_RETRY_AFTER_S))
        replica.ejected_until = now + back_off_s
        replica.ejections_in_a_row += 1
        replica.ejections += 1
        replica.on_trial = True
        replica.failure = f"Ejected for {back_off_s:g} s after: {failure.detail}"
        if self._metrics is not None:
            self._metrics.replica_ejections.labels(replica.url).inc()
        log.warning("inference_replica_ejected", replica=replica.url, back_off_s=back_off_s, error=failure.detail)

    def _apply(self, replica: Replica, probe: ReplicaProbe) -> None:
        if probe.ready and not replica.probed_ready and replica.ejected(now := time.monotonic()):
            replica.ejected_until = now  # it came back (a restart): its trial need not wait for the back-off
            log.info("inference_replica_back", replica=replica.url)
        replica.probed_ready = probe.ready
        replica.load_failed = probe.load_failed
        replica.detail = probe.detail
        replica.model = probe.model or replica.model
        wanted = self._settings.caption_max_new_tokens
        limit = replica.token_limit = probe.max_new_tokens_limit
        if wanted is not None and limit is not None:
            replica.unusable = (
                f"Not used: its model serves at most {limit} new tokens, fewer than "
                f"GATEWAY_CAPTION_MAX_NEW_TOKENS={wanted}."
                if limit < wanted
                else None
            )

    def _refuse_unservable_tokens(self) -> None:
        for replica in self._replicas.values():
            if replica.unusable:
                raise CaptionTokensUnservableError(
                    f"GATEWAY_CAPTION_MAX_NEW_TOKENS={self._settings.caption_max_new_tokens} is more than the "
                    f"inference replica at {replica.url} can serve (its model makes at most {replica.token_limit} "
                    "new tokens); lower the setting or serve a model with more positions."
                )

    def _add(self, replica: Replica) -> None:
        self._replicas[replica.url] = replica
        if self._metrics is not None:
            self._metrics.add_replica(replica.url)

    def _drop(self, replica: Replica) -> None:
        self._replicas.pop(replica.url, None)
        if self._metrics is not None:
            for family in (self._metrics.replica_in_flight,):
                with contextlib.suppress(KeyError):
                    family.remove(replica.url)
        log.info("inference_replica_dropped", replica=replica.url)

    @staticmethod
    async def _every(interval_s: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await job()
