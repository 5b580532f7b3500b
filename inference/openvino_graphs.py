"""The fp32 export on OpenVINO's CPU plugin (``INFERENCE_RUNTIME=openvino``).

OpenVINO reads the ONNX files directly (the fused ``com.microsoft`` attention included). On a CPU
whose plugin reports ``BF16`` (AMX or AVX512_BF16) it computes both graphs in bf16, with the
weights kept as f16 in memory (bf16 compute rounds them further anyway): the plugin keeps a
graph's constants besides its own bf16 copy, so fp32 constants would hold 2.8 GB for BLIP-large's
vision graph, f16 ones 1.5 GB. Elsewhere it computes in f32 from the fp32 weights.

``INFERENCE_OPENVINO_DECODER_WEIGHTS=int8`` gives the decoder, which streams every weight at every
token and is bound by memory bandwidth, int8 weights with one scale per output channel, widened
inside the plugin's matrix kernels: half the bytes of bf16, about half the decoding time.

Imported only when this runtime is chosen (``inference.runtimes``); it never pulls in torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import openvino as ov
import openvino.opset13 as ops
from numpy.typing import NDArray
from openvino._offline_transformations import compress_model_transformation

from inference.generate import cache_names
from inference.model_files import DECODER_FILE, VISION_FILE, GenerationConfig

BF16_CAPABILITY = "BF16"
INT8_LIMIT = 127
Compute = Literal["bf16", "f32"]


def compute_precision(core: ov.Core) -> Compute:
    """``bf16`` where the CPU plugin reports native bf16, else ``f32``."""
    return "bf16" if BF16_CAPABILITY in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES") else "f32"


def cpu_computes_bf16() -> bool:
    return compute_precision(ov.Core()) == "bf16"


def int8_weights(model: ov.Model) -> int:
    """Give every MatMul whose weight is a 2-D f32 constant int8 weights, one symmetric scale per
    output channel, as ``Convert(int8) * scale``: the pattern the CPU plugin runs as a matrix
    product with compressed weights. Returns how many MatMuls were changed."""
    changed = 0
    for node in model.get_ordered_ops():
        if node.get_type_name() != "MatMul":
            continue
        weight_node = node.input(1).get_source_output().get_node()
        if weight_node.get_type_name() != "Constant" or weight_node.get_output_element_type(0) != ov.Type.f32:
            continue
        weight = weight_node.get_data()
        if weight.ndim != 2:
            continue
        reduced_axis = 1 if node.get_attributes().get("transpose_b", False) else 0  # the input-feature axis
        scale = np.abs(weight).max(axis=reduced_axis, keepdims=True).astype(np.float32) / INT8_LIMIT
        scale[scale == 0] = 1.0
        quantized = np.clip(np.rint(weight / scale), -INT8_LIMIT, INT8_LIMIT).astype(np.int8)
        widened = ops.multiply(ops.convert(ops.constant(quantized), ov.Type.f32), ops.constant(scale))
        node.input(1).replace_source_output(widened.output(0))
        changed += 1
    return changed


def compile_graph(core: ov.Core, path: Path, threads: int, compute: Compute, *, int8: bool) -> Any:
    """Read and compile one graph for the CPU: ``threads`` threads, latency hint, ``compute`` precision;
    with ``int8``, int8 MatMul weights; in bf16, the (other) weights stored as f16."""
    model = core.read_model(str(path))
    if int8:
        int8_weights(model)
    if compute == "bf16":
        compress_model_transformation(model)
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": compute}
    return core.compile_model(model, "CPU", config)


class OpenVinoVision:
    """The vision graph: copies of its outputs as host arrays (``share_outputs=False``: the next
    request must not overwrite what the decoder is still reading)."""

    def __init__(self, compiled: Any, layers: int) -> None:
        self._names = cache_names("cross", layers)
        self._outputs = [compiled.output(name) for name in self._names]
        self._request = compiled.create_infer_request()

    def encode(self, pixels: NDArray[np.float32]) -> dict[str, Any]:
        result = self._request.infer({"pixel_values": pixels}, share_inputs=True, share_outputs=False)
        return {name: result[output] for name, output in zip(self._names, self._outputs, strict=True)}


class OpenVinoStep:
    """One decode loop's steps on one infer request; every tensor is a host array."""

    def __init__(self, request: Any, outputs: list[Any]) -> None:
        self._request, self._outputs = request, outputs
        self._bound: dict[str, Any] = {}

    def bind(self, values: dict[str, Any]) -> None:
        self._bound = dict(values)

    def __call__(self, input_ids: NDArray[np.int64], past: dict[str, Any]) -> tuple[NDArray[np.float32], list[Any]]:
        feeds = {"input_ids": input_ids, **self._bound, **past}
        result = self._request.infer(feeds, share_inputs=True, share_outputs=False)
        logits, *presents = (result[output] for output in self._outputs)
        return np.asarray(logits, dtype=np.float32), presents


class OpenVinoDecoder:
    """The decoder-step graph; ``logits`` and the ``present_*`` cache come back as host arrays."""

    def __init__(self, compiled: Any, layers: int) -> None:
        self._outputs = [compiled.output(name) for name in ["logits", *cache_names("present", layers)]]
        self._request = compiled.create_infer_request()

    def empty_cache(self, batch: int, config: GenerationConfig) -> Any:
        return np.zeros((batch, config.num_heads, 0, config.head_size), dtype=np.float32)

    def start(self) -> OpenVinoStep:
        return OpenVinoStep(self._request, self._outputs)


class HostRows:
    """Keeps batch rows of host arrays (the cache of an OpenVINO decode loop lives on the host)."""

    def keep(self, tensors: dict[str, Any], rows: NDArray[np.int64]) -> dict[str, Any]:
        return {name: value[rows] for name, value in tensors.items()}


def load_openvino_graphs(
    model_dir: Path, layers: int, threads: int, *, int8_decoder: bool
) -> tuple[OpenVinoVision, OpenVinoDecoder, HostRows, str]:
    """Both graphs of the fp32 export, compiled for this CPU, and what computes them
    (``bf16``, ``f32``, with ``-int8w`` for int8 decoder weights). The vision graph first, so that
    its compile (the larger peak of memory) comes before the decoder exists."""
    core = ov.Core()
    compute = compute_precision(core)
    vision = OpenVinoVision(compile_graph(core, model_dir / VISION_FILE, threads, compute, int8=False), layers)
    decoder_graph = compile_graph(core, model_dir / DECODER_FILE, threads, compute, int8=int8_decoder)
    return vision, OpenVinoDecoder(decoder_graph, layers), HostRows(), compute + ("-int8w" if int8_decoder else "")
