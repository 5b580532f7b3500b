"""Which runtime computes the two graphs (``INFERENCE_RUNTIME``), decided once at start.

- ``onnxruntime``: both graphs on onnxruntime's CPU or CUDA provider; the fp32 export is
  token-exact with PyTorch fp32 (the parity tests), int8 and fp16 exports run here only.
- ``openvino``: the fp32 export on OpenVINO's CPU plugin, which onnxruntime's CPU provider cannot
  match on a CPU with bf16 instructions (AMX or AVX512_BF16): there both graphs compute in bf16
  (``openvino_graphs``; optionally with int8 decoder weights). On a CPU without bf16, OpenVINO
  computes both in f32 from the fp32 weights.
- ``auto``: ``openvino`` for an fp32 export served on a CPU whose OpenVINO plugin computes bf16
  natively and where OpenVINO is installed; ``onnxruntime`` everywhere else, and also where
  OpenVINO was chosen but cannot load the graphs (a warning says why).

The decode loop (``generate.greedy_decode``) is the same code on both runtimes.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import structlog
from numpy.typing import NDArray

from inference.generate import (
    Decoder,
    OnnxDecoder,
    OnnxSession,
    RowGather,
    RowKeeper,
    cross_attention_cache,
)
from inference.model_files import DECODER_FILE, VISION_FILE, GenerationConfig
from inference.sessions import Device, DeviceSetting, DeviceUnavailableError, create_session, device_of, planned_device

log = structlog.get_logger("inference.runtimes")

RuntimeSetting = Literal["auto", "onnxruntime", "openvino"]
Runtime = Literal["onnxruntime", "openvino"]


class RuntimeUnavailableError(Exception):
    """``INFERENCE_RUNTIME=openvino`` where it cannot serve; one sentence saying why."""


class VisionEncoder(Protocol):
    """Pixels in, the cross-attention keys/values of every decoder layer out, by the decoder's input names."""

    def encode(self, pixels: NDArray[np.float32]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class OnnxVision:
    """The vision graph on onnxruntime; its outputs stay on ``device`` (IO binding)."""

    session: OnnxSession
    layers: int
    device: Device

    def encode(self, pixels: NDArray[np.float32]) -> dict[str, Any]:
        return cross_attention_cache(self.session, pixels, self.layers, self.device)


@dataclass(frozen=True)
class Graphs:
    """An export's two graphs, loaded on one runtime."""

    vision: VisionEncoder
    decoder: Decoder
    rows: RowKeeper
    """Keeps the unfinished rows of a batch where its tensors live."""
    runtime: str
    """``onnxruntime``, or ``openvino-bf16`` / ``openvino-f32`` (``-int8w``: int8 decoder weights):
    what really computes the graphs."""
    providers: list[str]
    """onnxruntime's execution providers of the sessions, in priority order (``[]`` on OpenVINO)."""
    device: Device


def openvino_computes_bf16() -> bool:
    """Whether OpenVINO is installed and its CPU plugin reports native bf16 (AMX or AVX512_BF16)."""
    if importlib.util.find_spec("openvino") is None:
        return False
    from inference.openvino_graphs import cpu_computes_bf16

    return cpu_computes_bf16()


def choose_runtime(
    setting: RuntimeSetting,
    precision: str,
    device: Device,
    computes_bf16: Callable[[], bool] | None = None,
) -> Runtime:
    """The runtime for an export of ``precision`` served on ``device`` (see the module docstring);
    ``openvino`` where it cannot serve raises ``RuntimeUnavailableError``."""
    if setting == "onnxruntime":
        return "onnxruntime"
    if setting == "openvino":
        if device != "cpu":
            raise RuntimeUnavailableError(
                "INFERENCE_RUNTIME=openvino runs on the CPU, but the model is served on CUDA: "
                "set INFERENCE_RUNTIME=auto or onnxruntime, or INFERENCE_DEVICE=cpu."
            )
        if precision != "fp32":
            raise RuntimeUnavailableError(
                f"INFERENCE_RUNTIME=openvino serves fp32 exports (in bf16 where the CPU can), and this "
                f"export is {precision}: set INFERENCE_PRECISION=fp32 or INFERENCE_RUNTIME=onnxruntime."
            )
        if importlib.util.find_spec("openvino") is None:
            raise RuntimeUnavailableError(
                "INFERENCE_RUNTIME=openvino, but the openvino package is not installed: install the "
                "`inference` extra, or set INFERENCE_RUNTIME=auto or onnxruntime."
            )
        return "openvino"
    if device != "cpu" or precision != "fp32":
        return "onnxruntime"
    return "openvino" if (computes_bf16 or openvino_computes_bf16)() else "onnxruntime"


def load_graphs(
    model_dir: Path,
    generation: GenerationConfig,
    threads: int,
    runtime: Runtime,
    device: DeviceSetting,
    *,
    int8_decoder: bool = False,
) -> Graphs:
    """Both graphs of the export in ``model_dir`` on ``runtime`` (on onnxruntime, on ``device``;
    on OpenVINO, ``int8_decoder`` for int8 decoder weights)."""
    layers = generation.num_layers
    if runtime == "openvino":
        from inference.openvino_graphs import load_openvino_graphs

        vision, decoder, rows, compute = load_openvino_graphs(model_dir, layers, threads, int8_decoder=int8_decoder)
        return Graphs(vision, decoder, rows, f"openvino-{compute}", providers=[], device="cpu")
    session = create_session(model_dir / DECODER_FILE, threads, device)
    served_on = device_of(session.get_providers())
    vision = create_session(model_dir / VISION_FILE, threads, served_on)
    if device_of(vision.get_providers()) != served_on:
        raise DeviceUnavailableError(
            f"INFERENCE_DEVICE={device}: the decoder's session got {served_on} and the vision graph's did not "
            "(onnxruntime's log says why): fix the GPU setup, or set INFERENCE_DEVICE=cpu."
        )
    gather = create_session(RowGather.model_for(session, layers), threads, served_on)
    return Graphs(
        vision=OnnxVision(vision, layers, served_on),
        decoder=OnnxDecoder(session, layers, served_on),
        rows=RowGather.for_session(gather, layers, served_on),
        runtime="onnxruntime",
        providers=session.get_providers(),
        device=served_on,
    )


def load_served_graphs(
    setting: RuntimeSetting,
    precision: str,
    model_dir: Path,
    generation: GenerationConfig,
    threads: int,
    device: DeviceSetting,
    *,
    int8_decoder: bool = False,
) -> Graphs:
    """The export's graphs on the runtime ``setting`` chooses; ``auto`` falls back to onnxruntime
    when OpenVINO cannot load them (``openvino`` asked for by name raises instead)."""
    chosen = choose_runtime(setting, precision, planned_device(device))
    if chosen == "openvino" and setting == "auto":
        try:
            return load_graphs(model_dir, generation, threads, "openvino", device, int8_decoder=int8_decoder)
        except Exception as exc:  # noqa: BLE001 (auto promises a working runtime, not this one)
            reason = (str(exc).strip().splitlines() or [""])[0][:300]
            log.warning("openvino_unusable", fallback="onnxruntime", error=type(exc).__name__, reason=reason)
            chosen = "onnxruntime"
    return load_graphs(model_dir, generation, threads, chosen, device, int8_decoder=int8_decoder)
