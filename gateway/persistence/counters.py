"""The names of the stats counters: one typed key, built and parsed here and nowhere else.

A counter row's key is ``group.name``: ``status.completed``, ``caption.failed``,
``recaption.queued``, ``stage_sum.decode`` / ``stage_n.decode``, and per timing (``processing``,
``end_to_end``) its ``sum``, its count ``n`` and its histogram buckets ``h0``, ``h1``...
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.persistence.models import CaptionStatus, ImageStatus, RecaptionStatus

BUCKET_PREFIX = "h"


class Stage(StrEnum):
    """The pipeline stages whose durations are averaged (``<stage>_ms`` columns)."""

    DECODE = "decode"
    METADATA = "metadata"
    THUMBNAILS = "thumbnails"
    CAPTION = "caption"


class Timing(StrEnum):
    """The per-image durations summarised with a histogram (``<timing>_ms`` columns)."""

    PROCESSING = "processing"
    END_TO_END = "end_to_end"


@dataclass(frozen=True)
class CounterKey:
    group: str
    name: str

    def __str__(self) -> str:
        return f"{self.group}.{self.name}"

    @classmethod
    def parse(cls, text: str) -> CounterKey:
        group, _, name = text.partition(".")
        return cls(group, name)

    @classmethod
    def status(cls, status: ImageStatus | str) -> CounterKey:
        return cls("status", str(status))

    @classmethod
    def caption(cls, status: CaptionStatus | str) -> CounterKey:
        return cls("caption", str(status))

    @classmethod
    def recaption(cls, status: RecaptionStatus | str) -> CounterKey:
        return cls("recaption", str(status))

    @classmethod
    def stage_sum(cls, stage: Stage) -> CounterKey:
        return cls("stage_sum", stage.value)

    @classmethod
    def stage_count(cls, stage: Stage) -> CounterKey:
        return cls("stage_n", stage.value)

    @classmethod
    def timing_sum(cls, timing: Timing) -> CounterKey:
        return cls(timing.value, "sum")

    @classmethod
    def timing_count(cls, timing: Timing) -> CounterKey:
        return cls(timing.value, "n")

    @classmethod
    def timing_bucket(cls, timing: Timing, bucket: int) -> CounterKey:
        return cls(timing.value, f"{BUCKET_PREFIX}{bucket}")

    @property
    def bucket(self) -> int | None:
        """The histogram bucket of a ``timing_bucket`` key; ``None`` for any other key."""
        number = self.name.removeprefix(BUCKET_PREFIX)
        timed = self.group in {timing.value for timing in Timing}
        return int(number) if timed and self.name.startswith(BUCKET_PREFIX) and number.isdigit() else None


@dataclass(frozen=True)
class Counters:
    """Every counter summed over its shards, read by typed key (a counter never written is 0)."""

    values: dict[str, float]

    def __getitem__(self, key: CounterKey) -> float:
        return self.values.get(str(key), 0.0)

    def count(self, key: CounterKey) -> int:
        return round(self[key])

    def buckets(self, timing: Timing) -> dict[int, float]:
        """The histogram of ``timing``: bucket -> images."""
        found: dict[int, float] = {}
        for text, value in self.values.items():
            key = CounterKey.parse(text)
            if key.group == timing.value and key.bucket is not None:
                found[key.bucket] = value
        return found
