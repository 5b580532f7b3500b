"""The exported dir: self-contained, checked by hash at load, no weight stored twice."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import time
from pathlib import Path

import onnx
import pytest
from litestar.testing import AsyncTestClient

from inference.app import create_app
from inference.captioner import BlipCaptioner
from inference.model_files import HASHED_FILES, ModelFilesError, load_manifest
from inference.settings import InferenceSettings
from tests.conftest import ModelExporter

pytestmark = pytest.mark.slow


def test_manifest_names_source_precision_versions_and_every_hash(exported_model: ModelExporter) -> None:
    manifest = load_manifest(exported_model("tiny-random"))
    assert manifest.source_model == "tiny-random"
    assert manifest.is_test_model is True
    assert manifest.precision == "fp32"
    assert set(manifest.files_sha256) == set(HASHED_FILES)
    assert {"torch", "transformers", "onnx", "onnxruntime"} <= set(manifest.versions)


def test_generation_settings_are_written_out_in_full(exported_model: ModelExporter) -> None:
    generation = json.loads((exported_model("tiny-random") / "generation.json").read_text())
    assert generation["decoding"] == "greedy"
    assert {"bos_token_id", "eos_token_id", "pad_token_id", "max_length"} <= set(generation)
    assert generation["pad_token_id"] is not None  # config.json may omit it; the export must not
    assert generation["max_positions"] == 64, "the text decoder's max_position_embeddings"


def test_a_dir_without_a_manifest_is_not_an_exported_model(tmp_path: Path) -> None:
    with pytest.raises(ModelFilesError, match=r"not an exported model dir \(no manifest\.json\)"):
        load_manifest(tmp_path)


def test_an_altered_file_is_refused_at_load(exported_model: ModelExporter, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(exported_model("tiny-random"), copy)
    with (copy / "tokenizer.json").open("a") as handle:
        handle.write(" ")
    with pytest.raises(ModelFilesError, match="sha256"):
        BlipCaptioner.load(copy, threads=1)
    (copy / "decoder.onnx").unlink()
    with pytest.raises(ModelFilesError, match="missing"):
        BlipCaptioner.load(copy, threads=1)


def test_no_weight_is_stored_twice_within_or_across_the_graphs(exported_model: ModelExporter) -> None:
    model_dir = exported_model("tiny-random-wide")
    seen: dict[str, str] = {}
    for name in ("vision.onnx", "decoder.onnx"):
        for tensor in onnx.load(str(model_dir / name)).graph.initializer:
            if len(tensor.dims) < 2:  # small biases and shape constants may legitimately repeat
                continue
            digest = hashlib.sha256(tensor.raw_data).hexdigest()
            assert digest not in seen, f"{name}:{tensor.name} duplicates {seen[digest]}"
            seen[digest] = f"{name}:{tensor.name}"


def test_graphs_have_dynamic_batch_and_sequence_axes(exported_model: ModelExporter) -> None:
    decoder = onnx.load(str(exported_model("tiny-random") / "decoder.onnx")).graph
    dims = {
        value.name: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim] for value in decoder.input
    }
    assert dims["input_ids"] == ["batch", "new_tokens"]
    assert dims["past_key_0"][0] == "batch" and dims["past_key_0"][2] == "past_tokens"
    vision = onnx.load(str(exported_model("tiny-random") / "vision.onnx")).graph
    assert vision.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def _rehash(model_dir: Path, name: str) -> None:
    manifest_path = model_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files_sha256"][name] = hashlib.sha256((model_dir / name).read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))


def test_an_unparseable_manifest_is_a_model_files_error(exported_model: ModelExporter, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(exported_model("tiny-random"), copy)
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(ModelFilesError, match=r"manifest\.json is not a valid"):
        BlipCaptioner.load(copy, threads=1)


@pytest.mark.parametrize(
    ("broken_file", "content"),
    [("manifest.json", b"{not json"), ("vision.onnx", b"not a protobuf at all"), ("tokenizer.json", b"{}")],
)
async def test_a_model_that_fails_to_load_leaves_the_service_not_ready_with_the_reason(
    exported_model: ModelExporter, tmp_path: Path, broken_file: str, content: bytes
) -> None:
    # Whatever the loader raises (onnxruntime and tokenizers have their own exception types),
    # the service must say why, never sit in "loading" for ever.
    copy = tmp_path / "model"
    shutil.copytree(exported_model("tiny-random"), copy)
    (copy / broken_file).write_bytes(content)
    if broken_file != "manifest.json":
        _rehash(copy, broken_file)
    app = create_app(InferenceSettings(model=str(copy), model_dir=tmp_path / "cache", log_dir=tmp_path / "logs"))
    async with AsyncTestClient(app=app) as client:
        deadline = time.monotonic() + 60
        while (body := (await client.get("/health/ready")).json())["detail"] == "The model is loading.":
            assert time.monotonic() < deadline, "the service is stuck loading"
            await asyncio.sleep(0.05)
    assert (body["status"], body["state"]) == ("not_ready", "failed")
    assert body["detail"].startswith("No model can be served")
