"""``GET /v1/model`` of the inference service."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MODEL_INFO_PATH = "/v1/model"


class BatchingInfo(BaseModel):
    """How the service groups requests into model calls."""

    model_config = ConfigDict(frozen=True)

    max_batch: int = Field(
        ge=1, description="INFERENCE_MAX_BATCH, or its default for the device: 1 on CPU, 16 on CUDA."
    )
    max_wait_ms: float = Field(ge=0)
    queue_size: int = Field(ge=1)


class ModelInfo(BaseModel):
    """What model the inference service serves, and how."""

    model_config = ConfigDict(frozen=True)

    name: str
    revision: str | None = None
    precision: str = Field(description='"fp32", "int8" or "fp16".')
    execution_providers: list[str] = Field(description="The same list as `providers` (the older name).")
    providers: list[str] = Field(
        default_factory=list,
        description="Execution providers the model's onnxruntime sessions really have, in priority order; "
        "empty until the model is loaded, and when OpenVINO runs it (see `runtime`).",
    )
    device: Literal["cpu", "cuda"] | None = Field(
        default=None, description="Where the model runs (cuda only with the CUDA provider); null until loaded."
    )
    runtime: str | None = Field(
        default=None,
        description='What computes the graphs: "onnxruntime", or "openvino-bf16" / "openvino-f32" '
        '(INFERENCE_RUNTIME), with "-int8w" for int8 decoder weights; null until loaded.',
    )
    batching: BatchingInfo
    is_test_model: bool = Field(description="True for the random `tiny-random` test model.")
    ready: bool
    max_new_tokens_limit: int | None = Field(
        default=None, ge=1, description="Largest max_new_tokens this model can serve."
    )
