"""Parity, the proof that the export is right: served token ids equal PyTorch's ``generate``.

For ``tiny-random`` and a second tiny architecture, on every accepted photo of the corpus, with
and without a prompt, fp32. Preprocessing equals ``BlipImageProcessor`` (max abs diff reported).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from litestar.testing import AsyncTestClient
from PIL import Image

from inference.app import create_app
from inference.captioner import BlipCaptioner
from inference.preprocess import decode_image, pixel_values
from inference.settings import InferenceSettings
from tests.conftest import ModelExporter, Reporter
from tests.optional import import_or_skip
from tests.support import CORPUS_DIR, corpus_rows

torch = import_or_skip("torch", "pip install -e '.[export]'")
transformers = import_or_skip("transformers", "pip install -e '.[export]'")

ACCEPTED = [row["file"] for row in corpus_rows() if row["expected"] == "accept"]
MAX_NEW_TOKENS = 12
PROMPT = "a photography of"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    return [decode_image((CORPUS_DIR / name).read_bytes(), 50_000_000) for name in ACCEPTED]


@pytest.fixture(scope="module", params=["tiny-random", "tiny-random-wide"])
def pair(request: pytest.FixtureRequest, exported_model: ModelExporter) -> tuple[BlipCaptioner, Any, Any]:
    """(our ONNX captioner, the PyTorch model, its processor) for one tiny architecture."""
    model_dir: Path = exported_model(request.param)
    source = model_dir / "source-model"
    model = transformers.BlipForConditionalGeneration.from_pretrained(source).eval()
    processor = transformers.BlipProcessor.from_pretrained(source)
    return BlipCaptioner.load(model_dir, threads=2), model, processor


def reference_ids(model: Any, processor: Any, image: Image.Image, prompt: str | None) -> list[int]:
    inputs = processor(images=image, text=prompt, return_tensors="pt")
    with torch.no_grad():
        output = model.generate(**inputs, num_beams=1, do_sample=False, max_new_tokens=MAX_NEW_TOKENS)
    ids: list[int] = output[0].tolist()
    return ids


def trim_after_eos(ids: list[int], eos: int, start: int) -> list[int]:
    for index in range(start, len(ids)):
        if ids[index] == eos:
            return ids[: index + 1]
    return ids


@pytest.mark.parametrize("prompt", [None, PROMPT], ids=["unconditional", "with-prompt"])
def test_served_tokens_equal_pytorch_generate_on_every_corpus_photo(
    pair: tuple[BlipCaptioner, Any, Any], photos: list[Image.Image], prompt: str | None
) -> None:
    captioner, model, processor = pair
    eos = captioner.generation.eos_token_id
    captions = set()
    for name, image in zip(ACCEPTED, photos, strict=True):
        expected = reference_ids(model, processor, image, prompt)
        (ours,), _ = captioner.caption_batch([image], prompt, MAX_NEW_TOKENS)
        prefix = 1 + len(captioner.tokenizer.encode_prompt(prompt)) if prompt else 1
        assert ours.token_ids == trim_after_eos(expected, eos, prefix), name
        assert ours.caption == processor.decode(expected, skip_special_tokens=True).strip(), name
        if prompt:
            assert ours.caption.startswith(PROMPT)
        captions.add(ours.caption)
    # a random model that captions every image alike would pass parity while testing nothing
    assert len(captions) >= len(photos) // 3


def test_a_batch_gives_the_same_tokens_as_one_at_a_time(
    pair: tuple[BlipCaptioner, Any, Any], photos: list[Image.Image]
) -> None:
    captioner, _, _ = pair
    batch, _ = captioner.caption_batch(photos[:5], None, MAX_NEW_TOKENS)
    alone = [captioner.caption_batch([image], None, MAX_NEW_TOKENS)[0][0] for image in photos[:5]]
    assert [result.token_ids for result in batch] == [result.token_ids for result in alone]


def test_preprocessing_equals_blip_image_processor(
    pair: tuple[BlipCaptioner, Any, Any], photos: list[Image.Image], report: Reporter
) -> None:
    captioner, _, processor = pair
    ours = pixel_values(photos, captioner.preprocess)
    reference = processor.image_processor(images=photos, return_tensors="np").pixel_values
    worst = float(np.max(np.abs(ours - reference)))
    model = captioner.manifest.source_model
    report(f"{model}: preprocessing max abs diff vs BlipImageProcessor on {len(photos)} photos: {worst:.3g}")
    assert worst <= 1e-5


def test_int8_export_loads_serves_and_reports_agreement(
    exported_model: ModelExporter, photos: list[Image.Image], report: Reporter
) -> None:
    fp32 = BlipCaptioner.load(exported_model("tiny-random"), threads=2)
    int8 = BlipCaptioner.load(exported_model("tiny-random", "int8"), threads=2)
    assert int8.manifest.precision == "int8"
    same = total = 0
    for image in photos:
        (a,), _ = fp32.caption_batch([image], None, MAX_NEW_TOKENS)
        (b,), _ = int8.caption_batch([image], None, MAX_NEW_TOKENS)
        assert b.new_tokens > 0
        total += max(len(a.token_ids), len(b.token_ids))
        same += sum(x == y for x, y in zip(a.token_ids, b.token_ids, strict=False))
    report(f"int8 vs fp32 token agreement of tiny-random on {len(photos)} photos: {same / total:.1%}")
    assert (exported_model("tiny-random", "int8") / "vision.onnx").stat().st_size < (
        exported_model("tiny-random") / "vision.onnx"
    ).stat().st_size


async def test_captions_over_http_equal_pytorch_generate(exported_model: ModelExporter, tmp_path: Path) -> None:
    # The whole served path: raw bytes in, EXIF, preprocessing, queue, model, text out.
    model_dir = exported_model("tiny-random")
    source = model_dir / "source-model"
    model = transformers.BlipForConditionalGeneration.from_pretrained(source).eval()
    processor = transformers.BlipProcessor.from_pretrained(source)
    settings = InferenceSettings(
        model=str(model_dir), model_dir=tmp_path / "cache", log_dir=tmp_path / "logs", runtime="onnxruntime"
    )  # token-exact with PyTorch fp32 (auto computes in bf16 on a CPU that has it)
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        deadline = time.monotonic() + 60
        while (await client.get("/health/ready")).status_code != 200:
            assert time.monotonic() < deadline, "the model never got ready"
            await asyncio.sleep(0.05)
        for name in ACCEPTED[:6]:
            data = (CORPUS_DIR / name).read_bytes()
            response = await client.post(
                "/v1/captions", content=data, params={"max_new_tokens": MAX_NEW_TOKENS},
                headers={"Content-Type": "image/jpeg" if name.endswith((".jpg", ".jpeg")) else "image/png"},
            )  # fmt: skip
            assert response.status_code == 200, response.text
            expected = reference_ids(model, processor, decode_image(data, 50_000_000), None)
            assert response.json()["caption"] == processor.decode(expected, skip_special_tokens=True).strip(), name
