"""The fp16 export (for CUDA): float32 where tensors cross to the host, float16 inside; it serves on CPU too.

No GPU is reachable here, so this runs the fp16 graphs on onnxruntime's CPU provider (which runs
float16 nodes it has no kernel for through inserted casts): proof that the graphs and the float16
cache path of the decode loop work, not a measure of GPU speed or of caption quality.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from inference.captioner import BlipCaptioner
from inference.generate import OnnxDecoder
from inference.preprocess import decode_image
from inference.runtimes import OnnxVision
from tests.conftest import ModelExporter, Reporter
from tests.support import CORPUS_DIR, corpus_rows

pytestmark = pytest.mark.slow
MAX_NEW_TOKENS = 12
FLOAT, HALF = "tensor(float)", "tensor(float16)"


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    files = [row["file"] for row in corpus_rows() if row["expected"] == "accept"]
    return [decode_image((CORPUS_DIR / name).read_bytes(), 50_000_000) for name in files]


@pytest.fixture(scope="module")
def fp16_dir(exported_model: ModelExporter) -> Path:
    return exported_model("tiny-random", "fp16")


def test_fp16_graphs_keep_float32_only_where_tensors_cross_to_the_host(fp16_dir: Path) -> None:
    captioner = BlipCaptioner.load(fp16_dir, threads=2, device="cpu")
    assert captioner.manifest.precision == "fp16"
    assert isinstance(captioner.vision, OnnxVision)
    vision_in = {item.name: item.type for item in captioner.vision.session.get_inputs()}
    vision_out = {item.name: item.type for item in captioner.vision.session.get_outputs()}
    assert isinstance(captioner.decoder, OnnxDecoder)
    decoder_in = {item.name: item.type for item in captioner.decoder.session.get_inputs()}
    decoder_out = {item.name: item.type for item in captioner.decoder.session.get_outputs()}
    assert vision_in == {"pixel_values": FLOAT}
    assert decoder_out.pop("logits") == FLOAT
    assert decoder_in.pop("input_ids") == "tensor(int64)"
    vision_out.pop("image_embeds")
    for name, kind in (vision_out | decoder_in | decoder_out).items():
        assert kind == HALF, name


def test_fp16_export_is_smaller_and_captions_on_cpu(
    exported_model: ModelExporter, fp16_dir: Path, photos: list[Image.Image], report: Reporter
) -> None:
    fp32 = BlipCaptioner.load(exported_model("tiny-random"), threads=2, device="cpu")
    fp16 = BlipCaptioner.load(fp16_dir, threads=2, device="cpu")
    full, _ = fp32.caption_batch(photos, None, MAX_NEW_TOKENS)
    half, _ = fp16.caption_batch(photos, None, MAX_NEW_TOKENS)
    alone = [fp16.caption_batch([image], None, MAX_NEW_TOKENS)[0][0] for image in photos]
    assert [row.token_ids for row in half] == [row.token_ids for row in alone], "batching changes no fp16 caption"
    assert all(row.new_tokens > 0 and row.caption for row in half)
    same = sum(a == b for x, y in zip(full, half, strict=True) for a, b in zip(x.token_ids, y.token_ids, strict=False))
    total = sum(max(len(x.token_ids), len(y.token_ids)) for x, y in zip(full, half, strict=True))
    report(f"fp16 vs fp32 token agreement of tiny-random on CPU, {len(photos)} photos: {same / total:.1%}")
    assert same / total > 0.9
    for name in ("vision.onnx", "decoder.onnx"):
        size_16, size_32 = (fp16_dir / name).stat().st_size, (exported_model("tiny-random") / name).stat().st_size
        assert size_16 < 0.8 * size_32, name  # the weights halve; on this tiny model the nodes weigh as much
