"""The faster set-ups: what the int8 graphs hold."""

from __future__ import annotations

import pytest

from inference.model_files import DECODER_FILE, VISION_FILE, load_generation
from tests.conftest import ModelExporter
from tests.optional import import_or_skip

onnx = import_or_skip("onnx", "pip install -e '.[export]'")

pytestmark = pytest.mark.slow


def weight_widths(model: object) -> dict[str, int]:
    return {tensor.name: tensor.dims[-1] for tensor in model.graph.initializer if len(tensor.dims) == 2}


def test_int8_export_quantizes_the_lm_head_and_fuses_vision_attention(exported_model: ModelExporter) -> None:
    model_dir = exported_model("tiny-random", "int8")
    vocab = load_generation(model_dir).vocab_size
    decoder = onnx.load(str(model_dir / DECODER_FILE))
    widths = weight_widths(decoder)
    integer_widths = [widths.get(node.input[1]) for node in decoder.graph.node if node.op_type == "MatMulInteger"]
    assert vocab in integer_widths, "the LM head is not int8"
    float_ops = ("MatMul", "Gemm")
    float_weights = [node.name for node in decoder.graph.node if node.op_type in float_ops and node.input[1] in widths]
    assert float_weights == [], "a weight MatMul/Gemm stayed fp32"
    vision = onnx.load(str(model_dir / VISION_FILE))
    assert sum(node.op_type == "QAttention" for node in vision.graph.node) == 2  # tiny-random's two layers
    assert not any(node.op_type == "Softmax" for node in vision.graph.node)


def test_fp32_export_fuses_the_vision_attention(exported_model: ModelExporter) -> None:
    vision = onnx.load(str(exported_model("tiny-random") / VISION_FILE))
    assert sum(node.op_type == "Attention" for node in vision.graph.node) == 2
