"""Session construction: onnxruntime (providers, threads, options) or OpenVINO, decided once at start."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import onnxruntime as ort

from inference.generate import OnnxSession

PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
Runtime = Literal["onnxruntime", "openvino"]
RuntimeChoice = Literal["auto", "onnxruntime", "openvino"]


def openvino_computes_bf16() -> bool:
    """Whether OpenVINO is installed and its CPU plugin has native bf16 (AMX or AVX512_BF16)."""
    if importlib.util.find_spec("openvino") is None:
        return False
    from inference.openvino_session import cpu_has_bf16

    return cpu_has_bf16()


def resolve_runtime(
    choice: RuntimeChoice, precision: str, has_bf16: Callable[[], bool] = openvino_computes_bf16
) -> Runtime:
    """``auto``: OpenVINO for an fp32 export on a CPU with native bf16 and no CUDA (there it is the
    fastest set-up that keeps fp32 weights, see bench.inference), onnxruntime everywhere else."""
    if choice != "auto":
        return choice
    if precision != "fp32" or "CUDAExecutionProvider" in available_providers():
        return "onnxruntime"
    return "openvino" if has_bf16() else "onnxruntime"


def available_providers() -> list[str]:
    """The CUDA provider when this onnxruntime build has it, then the CPU one."""
    available = set(ort.get_available_providers())
    return [provider for provider in PREFERRED_PROVIDERS if provider in available]


def create_session(path: Path, threads: int, runtime: Runtime = "onnxruntime") -> OnnxSession:
    """A session of ``runtime`` over one exported graph."""
    if runtime == "openvino":
        from inference.openvino_session import create_openvino_session  # only where chosen

        return create_openvino_session(path, threads)
    session: OnnxSession = create_onnxruntime_session(path, threads)
    return session


def create_onnxruntime_session(path: Path, threads: int, profile_prefix: Path | None = None) -> ort.InferenceSession:
    """One session: intra-op threads = ``threads``, one inter-op thread, sequential execution,
    every graph optimization, and no spinning threads (no latency cost measured here, and it
    leaves the CPU to the gateway on a shared host). ``profile_prefix``: onnxruntime's
    per-operator profile is written there (``bench.op_profile``)."""
    options = ort.SessionOptions()
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_prefix)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=available_providers())


def runtime_providers(runtime: Runtime, session: OnnxSession) -> list[str]:
    """What ``/v1/model`` reports as execution providers: onnxruntime's, or OpenVINO's device and precision."""
    if runtime == "openvino":
        return [f"OpenVINO CPU ({getattr(session, 'precision', 'f32')})"]
    return available_providers()
