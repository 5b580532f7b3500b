"""The exported dir: self-contained, checked by hash at load, no weight stored twice."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import onnx
import pytest

from inference.captioner import BlipCaptioner
from inference.model_files import HASHED_FILES, ModelFilesError, load_manifest
from tests.conftest import ModelExporter

pytestmark = pytest.mark.slow


def test_manifest_names_source_precision_versions_and_every_hash(exported_model: ModelExporter) -> None:
    manifest = load_manifest(exported_model("tiny-random"))
    assert manifest.source_model == "tiny-random"
    assert manifest.is_test_model is True
    assert manifest.precision == "fp32"
    assert set(manifest.files_sha256) == set(HASHED_FILES)
    assert {"torch", "transformers", "onnx", "onnxruntime"} <= set(manifest.versions)


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
