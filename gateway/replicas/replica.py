"""The replica record of the inference pool, what a probe learns, and what readiness shows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from gateway.persistence.models import CaptionModel


class ReplicaState(StrEnum):
    READY = "ready"
    EJECTED = "ejected"
    UNKNOWN = "unknown"


class Strategy(StrEnum):
    """How a replica is chosen; round-robin exists for the scaling benchmark's comparison."""

    LEAST_IN_FLIGHT = "least_in_flight"
    ROUND_ROBIN = "round_robin"


@dataclass(frozen=True)
class ReplicaProbe:
    """What one readiness probe learnt about a replica."""

    ready: bool
    detail: str
    load_failed: bool = False
    max_new_tokens_limit: int | None = None
    model: CaptionModel | None = None  # from GET /v1/model, when it answered


@dataclass(frozen=True)
class ReplicaView:
    url: str
    state: ReplicaState
    in_flight: int
    detail: str


@dataclass(frozen=True)
class InferenceReadiness:
    """Ready when any replica is; ``detail`` is one sentence.

    ``answering``: some replica's own readiness check says ready, even if it is ejected for failed
    requests. A caption that fails while one answers failed for itself, not for an outage.
    """

    ready: bool
    detail: str
    replicas: tuple[ReplicaView, ...] = ()
    answering: bool = False


Probe = Callable[[str, str | None], Awaitable[ReplicaProbe]]  # (base URL, request id)


@dataclass(eq=False)
class Replica:
    url: str
    in_flight: int = 0
    probed_ready: bool = False
    load_failed: bool = False
    unusable: str | None = None  # why captions must not go there (its model's token limit)
    token_limit: int | None = None
    model: CaptionModel | None = None
    detail: str = "Not probed yet."
    failure: str = ""
    ejected_until: float = 0.0
    ejections_in_a_row: int = 0
    ejections: int = 0  # every ejection so far: a lease taken before the latest one is stale
    on_trial: bool = False
    vanished: bool = False

    def ejected(self, now: float) -> bool:
        return now < self.ejected_until

    def trust(self) -> None:
        """End its ejection: a request sent since the latest one (its trial) succeeded."""
        self.on_trial = False
        self.ejections_in_a_row = 0
        self.ejected_until = 0.0

    @property
    def serviceable(self) -> bool:
        return not self.load_failed and self.unusable is None and not self.vanished

    def choosable(self, now: float) -> bool:
        trial_busy = self.on_trial and self.in_flight > 0
        return self.serviceable and self.probed_ready and not self.ejected(now) and not trial_busy

    def view(self, now: float) -> ReplicaView:
        if self.vanished:
            detail = "Leaving: its address is gone from DNS; it finishes the requests it holds."
            return ReplicaView(self.url, ReplicaState.UNKNOWN, self.in_flight, detail)
        if self.ejected(now):
            left_s = self.ejected_until - now
            return ReplicaView(self.url, ReplicaState.EJECTED, self.in_flight, f"{self.failure} ({left_s:.1f} s left)")
        if self.serviceable and self.probed_ready:
            detail = f"On trial after an ejection: {self.detail}" if self.on_trial else self.detail
            return ReplicaView(self.url, ReplicaState.READY, self.in_flight, detail)
        return ReplicaView(self.url, ReplicaState.UNKNOWN, self.in_flight, self.unusable or self.detail)


@dataclass(frozen=True)
class ReplicaLease:
    """One request on ``replica``, taken when it had been ejected ``ejections`` times.

    Its outcome tells about the replica as it is only while no ejection came since (``current``):
    an older request that succeeds must not end a newer ejection, nor one that fails extend it.
    """

    replica: Replica
    ejections: int

    @property
    def url(self) -> str:
        return self.replica.url

    @property
    def current(self) -> bool:
        return self.ejections == self.replica.ejections
