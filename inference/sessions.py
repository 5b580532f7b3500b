"""onnxruntime session construction: device, providers, threads and options, decided once at start."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Literal

import onnxruntime as ort

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
DeviceSetting = Literal["auto", "cpu", "cuda"]
Device = Literal["cpu", "cuda"]


class DeviceUnavailableError(Exception):
    """``INFERENCE_DEVICE=cuda`` and a session without the CUDA execution provider; one sentence saying why."""


def requested_providers(device: DeviceSetting, available: Collection[str]) -> list[str]:
    """``cuda``: CUDA first (the CPU provider runs what CUDA has no kernel for); ``cpu``: CPU only;
    ``auto``: CUDA when the onnxruntime build has it (``available``), else CPU."""
    if device == "cpu" or (device == "auto" and CUDA_PROVIDER not in available):
        return [CPU_PROVIDER]
    return [CUDA_PROVIDER, CPU_PROVIDER]


def device_of(providers: list[str]) -> Device:
    """Where a session with these providers keeps its tensors."""
    return "cuda" if CUDA_PROVIDER in providers else "cpu"


def planned_device(device: DeviceSetting) -> Device:
    """The device ``device`` asks this onnxruntime build for (a session may still fall back to the CPU)."""
    return device_of(requested_providers(device, ort.get_available_providers()))


def session_options(threads: int) -> ort.SessionOptions:
    """Intra-op threads = ``threads``, one inter-op thread, sequential execution, every graph
    optimization, and no spinning threads (no latency cost measured here, and it leaves the CPU to
    the gateway on a shared host)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def create_session(
    model: Path | bytes, threads: int, device: DeviceSetting = "auto", *, profile_prefix: Path | None = None
) -> ort.InferenceSession:
    """One session on ``device``; with ``cuda``, ``DeviceUnavailableError`` unless the session really
    got the CUDA provider (onnxruntime falls back to the CPU silently when CUDA cannot be loaded).
    ``profile_prefix`` turns on onnxruntime's per-operator profile (``bench.op_profile``)."""
    available = ort.get_available_providers()
    if device == "cuda" and CUDA_PROVIDER not in available:
        raise DeviceUnavailableError(
            f"INFERENCE_DEVICE=cuda, but this onnxruntime build ({ort.__version__}, providers "
            f"{', '.join(available)}) has no CUDA execution provider: install the `gpu` extra "
            "(onnxruntime-gpu) in place of onnxruntime, or set INFERENCE_DEVICE=auto or cpu."
        )
    source = str(model) if isinstance(model, Path) else model
    options = session_options(threads)
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_prefix)
    session = ort.InferenceSession(source, sess_options=options, providers=requested_providers(device, available))
    if device == "cuda" and CUDA_PROVIDER not in session.get_providers():
        raise DeviceUnavailableError(
            f"INFERENCE_DEVICE=cuda, but onnxruntime {ort.__version__} could not start its CUDA execution provider "
            "(no GPU visible, or the CUDA and cuDNN libraries it needs are missing; its log says which), "
            "so the session got only the CPU: fix the GPU setup, or set INFERENCE_DEVICE=auto or cpu."
        )
    return session
