"""onnxruntime session construction: providers, threads and options, decided once at start."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def available_providers() -> list[str]:
    """The CUDA provider when this onnxruntime build has it, then the CPU one."""
    available = set(ort.get_available_providers())
    return [provider for provider in PREFERRED_PROVIDERS if provider in available]


def create_session(path: Path, threads: int) -> ort.InferenceSession:
    """One session: intra-op threads = ``threads``, one inter-op thread, sequential execution,
    every graph optimization, and no spinning threads (no latency cost measured here, and it
    leaves the CPU to the gateway on a shared host)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=available_providers())
