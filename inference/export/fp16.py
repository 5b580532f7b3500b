"""fp16 graphs for the CUDA execution provider, converted from the checked fp32 export.

``onnxruntime.transformers.float16`` (part of onnxruntime, no other package) turns weights and
activations to float16. The inputs and outputs that cross to the host stay float32:
``pixel_values`` (preprocessing is unchanged) and ``logits`` (argmax on the host). The cache
tensors, which never leave the device between steps, become float16 too: half the memory and the
bandwidth of the KV cache and the cross-attention keys/values. Each graph is then compared with
its fp32 original by onnxruntime; fp16 is not expected to be token-exact.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnxruntime.transformers.float16 import convert_float_to_float16
from onnxruntime.transformers.onnx_model import OnnxModel

from inference.model_files import DECODER_FILE, VISION_FILE

log = logging.getLogger("inference.export")
KEEP_FLOAT32 = {VISION_FILE: ["pixel_values"], DECODER_FILE: ["logits"]}
RELATIVE_TOLERANCE = 0.05
"""Largest difference to the fp32 graph, relative to the largest fp32 value of that output."""


class Fp16MismatchError(Exception):
    """An fp16 graph strays from its fp32 original by more than the tolerance."""


def convert_to_fp16(staging: Path) -> None:
    """Replace each fp32 graph in ``staging`` by its fp16 version, checked against it."""
    feeds = _check_feeds(staging)
    for name, keep in KEEP_FLOAT32.items():
        fp32 = staging / name
        fp16 = staging / f"{name}.fp16"
        model = OnnxModel(convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=keep))
        model.topological_sort()  # the converter appends its Cast nodes; ONNX wants nodes in order
        onnx.save(model.model, str(fp16))
        onnx.checker.check_model(str(fp16))
        _compare(fp32, fp16, feeds[name])
        fp16.replace(fp32)


def _check_feeds(staging: Path) -> dict[str, dict[str, np.ndarray]]:
    """fp32 inputs for both graphs: random pixels, the cross keys/values the vision graph makes of them,
    random token ids and a random three-token cache."""
    generator = np.random.default_rng(0)
    batch, past_tokens = 2, 3
    vision = onnxruntime.InferenceSession(str(staging / VISION_FILE), providers=["CPUExecutionProvider"])
    (pixel_input,) = vision.get_inputs()
    pixels = generator.standard_normal([batch, *pixel_input.shape[1:]]).astype(np.float32)
    names = [item.name for item in vision.get_outputs()]
    cross = {
        name: value
        for name, value in zip(names, vision.run(None, {pixel_input.name: pixels}), strict=True)
        if name.startswith("cross_")
    }
    decoder = onnxruntime.InferenceSession(str(staging / DECODER_FILE), providers=["CPUExecutionProvider"])
    vocab = decoder.get_outputs()[0].shape[1]
    step: dict[str, np.ndarray] = {"input_ids": generator.integers(0, vocab, (batch, 2), dtype=np.int64), **cross}
    for item in decoder.get_inputs():
        if item.name.startswith("past_"):
            shape = [batch, item.shape[1], past_tokens, item.shape[3]]
            step[item.name] = generator.standard_normal(shape).astype(np.float32)
    return {VISION_FILE: {pixel_input.name: pixels}, DECODER_FILE: step}


def _compare(fp32: Path, fp16: Path, feeds: dict[str, np.ndarray]) -> None:
    reference = onnxruntime.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    converted = onnxruntime.InferenceSession(str(fp16), providers=["CPUExecutionProvider"])
    types = {item.name: item.type for item in converted.get_inputs()}
    cast = {key: value.astype(np.float16) if types[key] == "tensor(float16)" else value for key, value in feeds.items()}
    worst = 0.0
    for expected, actual in zip(reference.run(None, feeds), converted.run(None, cast), strict=True):
        scale = float(np.max(np.abs(expected))) if expected.size else 0.0
        if scale:
            worst = max(worst, float(np.max(np.abs(actual.astype(np.float32) - expected))) / scale)
    if worst > RELATIVE_TOLERANCE:
        raise Fp16MismatchError(
            f"{fp32.name}: the fp16 graph differs from fp32 by {worst:.1%} of the largest value "
            f"(> {RELATIVE_TOLERANCE:.0%})."
        )
    log.info("%s in fp16 stays within %.2f%% of fp32 (largest difference over largest value)", fp32.name, worst * 100)
