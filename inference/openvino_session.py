"""OpenVINO runtime for the same exported ONNX graphs (``INFERENCE_RUNTIME=openvino``).

OpenVINO reads the ONNX files directly (the fused ``com.microsoft`` ops of the vision graph
included). On a CPU with bf16 instructions (AMX or AVX512_BF16) it computes in bf16 with the fp32
weights of the export; elsewhere in fp32. Imported only when that runtime is chosen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

BF16_CAPABILITY = "BF16"


def compute_precision(core: ov.Core) -> str:
    """``bf16`` where the CPU plugin reports native bf16, else ``f32``."""
    capabilities = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return "bf16" if BF16_CAPABILITY in capabilities else "f32"


def cpu_has_bf16() -> bool:
    return compute_precision(ov.Core()) == "bf16"


class OpenVinoSession:
    """A compiled model behind onnxruntime's ``run(None, feeds)``: outputs in graph order, copied
    (the decoder feeds its outputs back as the next step's inputs)."""

    def __init__(self, compiled: Any, precision: str) -> None:
        self._request = compiled.create_infer_request()
        self.precision = precision

    def run(self, output_names: list[str] | None, input_feed: dict[str, Any]) -> list[Any]:
        del output_names  # every output, in graph order, as onnxruntime gives them for None
        result = self._request.infer(input_feed, share_inputs=True, share_outputs=False)
        return [np.asarray(value) for value in result.to_tuple()]


def create_openvino_session(path: Path, threads: int) -> OpenVinoSession:
    """Compile ``path`` for the CPU: ``threads`` inference threads, latency hint, bf16 where native."""
    core = ov.Core()
    precision = compute_precision(core)
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
    return OpenVinoSession(core.compile_model(str(path), "CPU", config), precision)
