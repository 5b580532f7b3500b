"""The stats histogram's percentile estimate stays within the 10 % that docs/design.md states of the true value."""

from __future__ import annotations

import math
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from gateway.persistence.histogram import RATIO, bucket_bounds, bucket_of, estimate_percentile

FOUR_HOURS_MS = 4 * 3600 * 1000.0
durations = st.lists(st.floats(min_value=1.0, max_value=FOUR_HOURS_MS), min_size=1, max_size=300)


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@given(durations, st.sampled_from([0.5, 0.95, 0.99]))
def test_a_percentile_estimate_is_within_ten_percent_of_the_true_value(values: list[float], fraction: float) -> None:
    counts = Counter(bucket_of(value) for value in values)
    estimate = estimate_percentile(dict(counts), fraction, exact_max=max(values))
    true_value = nearest_rank(values, fraction)
    assert abs(estimate - true_value) < (RATIO - 1) * true_value


@given(st.floats(min_value=0.0, max_value=FOUR_HOURS_MS))
def test_every_duration_falls_inside_its_bucket(value: float) -> None:
    low, high = bucket_bounds(bucket_of(value))
    assert low <= value < high


def test_the_estimate_never_passes_the_exact_maximum() -> None:
    assert estimate_percentile({bucket_of(1500.0): 3}, 0.95, exact_max=1500.0) <= 1500.0
