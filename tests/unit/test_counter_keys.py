"""Stats counter keys: built by one typed key, read back the same way, buckets found by their timing."""

from __future__ import annotations

import pytest

from gateway.persistence.counters import CounterKey, Counters, Stage, Timing
from gateway.persistence.models import CaptionStatus, ImageStatus, RecaptionStatus


@pytest.mark.parametrize(
    ("key", "text"),
    [
        (CounterKey.status(ImageStatus.COMPLETED), "status.completed"),
        (CounterKey.caption(CaptionStatus.UNAVAILABLE), "caption.unavailable"),
        (CounterKey.recaption(RecaptionStatus.QUEUED), "recaption.queued"),
        (CounterKey.stage_sum(Stage.THUMBNAILS), "stage_sum.thumbnails"),
        (CounterKey.stage_count(Stage.DECODE), "stage_n.decode"),
        (CounterKey.timing_sum(Timing.END_TO_END), "end_to_end.sum"),
        (CounterKey.timing_count(Timing.PROCESSING), "processing.n"),
        (CounterKey.timing_bucket(Timing.PROCESSING, 17), "processing.h17"),
    ],
)
def test_each_key_has_the_stored_name_and_parses_back(key: CounterKey, text: str) -> None:
    assert str(key) == text
    assert CounterKey.parse(text) == key


def test_only_bucket_keys_have_a_bucket() -> None:
    assert CounterKey.timing_bucket(Timing.END_TO_END, 3).bucket == 3
    assert CounterKey.timing_count(Timing.END_TO_END).bucket is None
    assert CounterKey.status("h1").bucket is None  # a status called "h1" is not a bucket


def test_counters_read_buckets_of_one_timing_and_zero_for_keys_never_written() -> None:
    counters = Counters({"processing.h2": 5.0, "processing.h7": 1.0, "end_to_end.h2": 9.0, "processing.n": 6.0})
    assert counters.buckets(Timing.PROCESSING) == {2: 5.0, 7: 1.0}
    assert counters.count(CounterKey.timing_count(Timing.PROCESSING)) == 6
    assert counters[CounterKey.status(ImageStatus.FAILED)] == 0.0
