"""InferenceSettings: every tunable of the inference service, read once from the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "Salesforce/blip-image-captioning-large"
MIB = 1024 * 1024
CPU_DEFAULT_MAX_BATCH = 1
"""Measured on CPU: batching adds 4-11 % throughput at 4x latency (the vision encoder is compute-bound)."""
CUDA_DEFAULT_MAX_BATCH = 16
"""Chosen, not measured (no GPU here): a GPU gains from batching where the CPU does not, and 16 images keep
the per-batch cache small (BLIP-large's cross-attention keys/values, computed: 12 layers x 2 x 577 image
tokens x 768 x 4 bytes = 42.5 MB per image in fp32, half in fp16)."""


class InferenceSettings(BaseSettings):
    """Typed, frozen settings; variables are ``INFERENCE_<NAME>`` plus ``HF_TOKEN``."""

    model_config = SettingsConfigDict(env_prefix="INFERENCE_", frozen=True, extra="ignore", protected_namespaces=())

    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=0, le=65535)
    model: str = Field(default=DEFAULT_MODEL, description="Hub id, local HF dir, exported dir, or tiny-random.")
    model_dir: Path = Field(default=Path("./models"), description="Where exports are cached.")
    precision: Literal["fp32", "int8", "fp16"] = Field(default="fp32", description="fp16 is for CUDA.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="auto: CUDA when onnxruntime has it, else CPU; cuda: refuse to start without it."
    )
    runtime: Literal["auto", "onnxruntime", "openvino"] = Field(
        default="auto",
        description="What computes the graphs. auto: OpenVINO (bf16) for an fp32 export on a CPU with native "
        "bf16 (AMX or AVX512_BF16), onnxruntime elsewhere; onnxruntime: token-exact with PyTorch fp32.",
    )
    openvino_decoder_weights: Literal["bf16", "int8"] = Field(
        default="bf16",
        description="On the openvino runtime: int8 gives the decoder int8 weights (one scale per output channel), "
        "about half its time on CPU; bf16 keeps its captions as close to fp32 as PyTorch bf16's.",
    )
    threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    max_batch: int | None = Field(default=None, ge=1, le=64, description="Unset: 1 on CPU, 16 on CUDA.")
    max_wait_ms: float = Field(default=5.0, ge=0)
    queue_size: int = Field(default=32, ge=1)
    request_timeout_s: float = Field(default=60.0, gt=0)
    max_body_bytes: int = Field(default=25 * MIB, ge=1)
    max_image_pixels: int = Field(default=50_000_000, ge=1)
    log_dir: Path = Path("./logs")
    log_level: str = "INFO"
    log_max_bytes: int = Field(default=10 * MIB, ge=1024)
    log_backup_count: int = Field(default=5, ge=0)
    hf_token: str | None = Field(default=None, validation_alias=AliasChoices("HF_TOKEN", "INFERENCE_HF_TOKEN"))
    export_timeout_s: float = Field(default=3600.0, gt=0)

    def max_batch_on(self, device: str) -> int:
        """Images per model call on ``device`` (the device the model really got): the setting, else its default."""
        if self.max_batch is not None:
            return self.max_batch
        return CUDA_DEFAULT_MAX_BATCH if device == "cuda" else CPU_DEFAULT_MAX_BATCH
