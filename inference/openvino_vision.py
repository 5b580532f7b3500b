"""The fp32 export's vision graph on OpenVINO: bf16 compute where the CPU has it, else f32.

OpenVINO reads the ONNX file directly (the fused ``com.microsoft`` attention included) and, on a CPU
whose plugin reports ``BF16`` (AMX or AVX512_BF16), runs it in bf16 from the fp32 weights. Imported
only when that runtime is chosen (``inference.vision``); it never pulls in torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort
import openvino as ov
from numpy.typing import NDArray
from openvino._offline_transformations import compress_model_transformation

from inference.generate import cache_names

BF16_CAPABILITY = "BF16"
Precision = Literal["bf16", "f32"]


def compute_precision(core: ov.Core) -> Precision:
    """``bf16`` where the CPU plugin reports native bf16, else ``f32``."""
    return "bf16" if BF16_CAPABILITY in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES") else "f32"


def cpu_computes_bf16() -> bool:
    return compute_precision(ov.Core()) == "bf16"


class OpenVinoVision:
    """One compiled vision graph and one infer request (the captioner runs one batch at a time)."""

    def __init__(self, compiled: Any, layers: int, precision: Precision) -> None:
        self._names = cache_names("cross", layers)
        self._outputs = [compiled.output(name) for name in self._names]
        self._request = compiled.create_infer_request()
        self.precision = precision

    @classmethod
    def compile(cls, path: Path, layers: int, threads: int) -> OpenVinoVision:
        """Compile ``path`` for the CPU: ``threads`` inference threads, latency hint, bf16 where native.

        In bf16 the weights are first stored as f16 (what ``ov.save_model(compress_to_fp16=True)``
        does, here in memory): the plugin keeps the graph's constants besides its own bf16 copy, so
        fp32 constants would hold 2.8 GB for BLIP-large's vision graph, f16 ones 1.5 GB. bf16
        compute rounds the weights further than f16 does.
        """
        core = ov.Core()
        precision = compute_precision(core)
        model = core.read_model(str(path))
        if precision == "bf16":
            compress_model_transformation(model)
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": precision,
        }
        return cls(core.compile_model(model, "CPU", config), layers, precision)

    @property
    def runtime(self) -> str:
        return f"openvino-{self.precision}"

    def encode(self, pixels: NDArray[np.float32]) -> dict[str, Any]:
        """Host ``OrtValue``\\ s over OpenVINO's output copies (``share_outputs=False``: the next
        request must not overwrite what the decoder is still reading)."""
        result = self._request.infer({"pixel_values": pixels}, share_inputs=True, share_outputs=False)
        return {
            name: ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(result[output]))
            for name, output in zip(self._names, self._outputs, strict=True)
        }
