"""The decode loop drops finished rows from the batch and still gives every row the tokens it gets alone.

A random tiny model rarely says ``eos``, so the test makes its most frequent word the ``eos``:
rows then finish at many different steps, and each finish takes rows out of the batch.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
from PIL import Image

from inference.captioner import BlipCaptioner
from inference.generate import RowGather, greedy_decode
from inference.preprocess import decode_image, pixel_values
from tests.conftest import ModelExporter
from tests.support import CORPUS_DIR, corpus_rows

pytestmark = pytest.mark.slow
NEW_TOKENS = 16


class CountingRowGather(RowGather):
    def __init__(self, rows: RowGather) -> None:
        super().__init__(rows.session, rows.names, rows.device)
        self.batch_sizes: list[int] = []

    def keep(self, tensors: dict[str, Any], rows: Any) -> dict[str, Any]:
        self.batch_sizes.append(len(rows))
        return super().keep(tensors, rows)


@pytest.fixture(scope="module")
def captioner(exported_model: ModelExporter) -> BlipCaptioner:
    return BlipCaptioner.load(exported_model("tiny-random"), threads=2, device="cpu")


@pytest.fixture(scope="module")
def pixels(captioner: BlipCaptioner) -> Any:
    files = [row["file"] for row in corpus_rows() if row["expected"] == "accept"]
    images: list[Image.Image] = [decode_image((CORPUS_DIR / name).read_bytes(), 50_000_000) for name in files]
    return pixel_values(images, captioner.preprocess)


def test_the_cross_keys_and_values_stay_onnxruntime_values_on_the_device(captioner: BlipCaptioner, pixels: Any) -> None:
    cross = captioner.vision.encode(pixels[:2])
    assert len(cross) == 2 * captioner.generation.num_layers
    for value in cross.values():
        assert value.device_name().lower() == "cpu"
        assert value.shape()[0] == 2


def test_rows_that_finish_leave_the_batch_and_the_rest_decode_as_alone(captioner: BlipCaptioner, pixels: Any) -> None:
    decoder = captioner.decoder
    free = greedy_decode(decoder, captioner.vision.encode(pixels), [], captioner.generation, 8)
    frequent, _ = Counter(token for row in free for token in row.token_ids[1:]).most_common(1)[0]
    config = captioner.generation.model_copy(update={"eos_token_id": frequent})
    assert captioner.rows is not None
    counting = CountingRowGather(captioner.rows)

    cross = captioner.vision.encode(pixels)
    batched = greedy_decode(decoder, cross, [], config, NEW_TOKENS, rows=counting)
    unbatched = greedy_decode(decoder, captioner.vision.encode(pixels), [], config, NEW_TOKENS)
    alone = [
        greedy_decode(decoder, captioner.vision.encode(pixels[i : i + 1]), [], config, NEW_TOKENS)[0]
        for i in range(len(pixels))
    ]
    assert [row.token_ids for row in batched] == [row.token_ids for row in alone]
    assert [row.token_ids for row in unbatched] == [row.token_ids for row in alone]

    ends = [row.new_tokens for row in batched if row.token_ids[-1] == frequent]
    assert len(set(ends)) >= 3, f"rows should finish at several steps, not {sorted(ends)}"
    # after each step where some rows ended (and more steps follow), exactly the others stay in the batch
    expected = [
        len(pixels) - sum(end <= step for end in ends)
        for step in sorted(set(ends))
        if step < NEW_TOKENS and sum(end <= step for end in ends) < len(pixels)
    ]
    assert counting.batch_sizes == expected
    assert np.all(np.diff(counting.batch_sizes) < 0)
