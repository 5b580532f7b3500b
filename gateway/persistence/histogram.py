"""Fixed log-spaced latency buckets: constant-size histograms whose percentiles are estimates.

Bucket ``k`` (k >= 1) holds durations in ``[RATIO**(k-1), RATIO**k)`` ms; bucket 0 holds
durations below 1 ms and the last bucket everything above ``RATIO**(BUCKETS-2)`` ms (~4.6 h).
A percentile is interpolated linearly inside the bucket holding its rank, so the estimate lies
in the same bucket as the true value: the relative error is below ``RATIO - 1`` (10 %), and the
upper edge is clamped to the exact maximum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

RATIO = 1.1
BUCKETS = 178  # 1.1**176 ms is about 4.6 hours


def bucket_of(duration_ms: float) -> int:
    if duration_ms < 1.0:
        return 0
    return min(BUCKETS - 1, 1 + math.floor(math.log(duration_ms) / math.log(RATIO)))


def bucket_bounds(bucket: int) -> tuple[float, float]:
    if bucket == 0:
        return 0.0, 1.0
    return RATIO ** (bucket - 1), RATIO**bucket


def estimate_percentile(counts: Mapping[int, float], fraction: float, exact_max: float) -> float:
    """The ``fraction`` quantile of the recorded durations, from bucket counts."""
    total = sum(counts.values())
    rank = fraction * total
    seen = 0.0
    for bucket in sorted(counts):
        count = counts[bucket]
        if count <= 0:
            continue
        if seen + count >= rank:
            low, high = bucket_bounds(bucket)
            high = min(high, exact_max) if bucket < BUCKETS - 1 else exact_max
            low = min(low, high)
            return low + (high - low) * max(0.0, rank - seen) / count
        seen += count
    return exact_max
