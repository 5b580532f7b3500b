"""The vision graph behind one method, on the runtime chosen once at start (``INFERENCE_VISION_RUNTIME``).

The vision encoder is the compute-bound half of a caption (24 ViT-L layers over 577 tokens for
BLIP-large); the decoder is bound by memory bandwidth. On a CPU with bf16 instructions (AMX or
AVX512_BF16) OpenVINO computes the fp32 export's vision graph in bf16, which onnxruntime's CPU
provider cannot; ``auto`` takes it there. The decoder always runs on onnxruntime, whose IO binding
keeps the cache where the session computes (``generate``): the encoder's output is handed over as
``OrtValue``\\ s either way.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from inference.generate import OnnxSession, cross_attention_cache
from inference.sessions import Device, create_session

VisionRuntimeSetting = Literal["auto", "onnxruntime", "openvino"]
VisionRuntime = Literal["onnxruntime", "openvino"]


class VisionRuntimeUnavailableError(Exception):
    """``INFERENCE_VISION_RUNTIME=openvino`` where it cannot serve; one sentence saying why."""


class VisionEncoder(Protocol):
    """Pixels in, the cross-attention keys/values of every decoder layer out, by the decoder's input names."""

    @property
    def runtime(self) -> str:
        """``onnxruntime``, ``openvino-bf16`` or ``openvino-f32``: what really computes the graph."""

    def encode(self, pixels: NDArray[np.float32]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class OnnxVision:
    """The vision graph on onnxruntime; its outputs stay on ``device`` (IO binding)."""

    session: OnnxSession
    layers: int
    device: Device

    @property
    def runtime(self) -> str:
        return "onnxruntime"

    def encode(self, pixels: NDArray[np.float32]) -> dict[str, Any]:
        return cross_attention_cache(self.session, pixels, self.layers, self.device)


def openvino_computes_bf16() -> bool:
    """Whether OpenVINO is installed and its CPU plugin reports native bf16 (AMX or AVX512_BF16)."""
    if importlib.util.find_spec("openvino") is None:
        return False
    from inference.openvino_vision import cpu_computes_bf16

    return cpu_computes_bf16()


def choose_vision_runtime(
    setting: VisionRuntimeSetting,
    precision: str,
    device: Device,
    computes_bf16: Callable[[], bool] = openvino_computes_bf16,
) -> VisionRuntime:
    """``auto``: OpenVINO for an fp32 export served on a CPU that computes bf16 natively (there it is
    the faster set-up, see docs/benchmarks.md), onnxruntime everywhere else. ``openvino`` where it
    cannot serve raises ``VisionRuntimeUnavailableError``."""
    if setting == "onnxruntime":
        return "onnxruntime"
    if setting == "openvino":
        if device != "cpu":
            raise VisionRuntimeUnavailableError(
                "INFERENCE_VISION_RUNTIME=openvino runs on the CPU, but the model is served on CUDA: "
                "set INFERENCE_VISION_RUNTIME=auto or onnxruntime, or INFERENCE_DEVICE=cpu."
            )
        if precision != "fp32":
            raise VisionRuntimeUnavailableError(
                f"INFERENCE_VISION_RUNTIME=openvino serves fp32 exports (computed in bf16 where the CPU can), "
                f"and this export is {precision}: set INFERENCE_PRECISION=fp32 or INFERENCE_VISION_RUNTIME=onnxruntime."
            )
        if importlib.util.find_spec("openvino") is None:
            raise VisionRuntimeUnavailableError(
                "INFERENCE_VISION_RUNTIME=openvino, but the openvino package is not installed: install the "
                "`inference` extra, or set INFERENCE_VISION_RUNTIME=auto or onnxruntime."
            )
        return "openvino"
    if device != "cpu" or precision != "fp32":
        return "onnxruntime"
    return "openvino" if computes_bf16() else "onnxruntime"


def load_vision(path: Path, layers: int, threads: int, runtime: VisionRuntime, device: Device) -> VisionEncoder:
    """The vision graph at ``path`` on ``runtime``; on onnxruntime, on ``device`` (the one onnxruntime offers)."""
    if runtime == "openvino":
        from inference.openvino_vision import OpenVinoVision

        return OpenVinoVision.compile(path, layers, threads)
    return OnnxVision(create_session(path, threads, device), layers, device)
