"""Caption request parameters and response shared by the gateway and the inference service."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

CAPTIONS_PATH = "/v1/captions"
READY_PATH = "/health/ready"
MAX_NEW_TOKENS_LIMIT = 128
"""The API's bound on ``max_new_tokens``; a model may serve fewer (``ModelInfo.max_new_tokens_limit``)."""
MAX_PROMPT_CHARS = 500


class CaptionParams(BaseModel):
    """Optional query parameters of ``POST /v1/captions``."""

    model_config = ConfigDict(frozen=True)

    prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS, description="Conditional captioning prefix.")
    max_new_tokens: int | None = Field(
        default=None, ge=1, le=MAX_NEW_TOKENS_LIMIT, description="Upper bound on generated tokens."
    )

    def as_query(self) -> dict[str, str]:
        """Render the set parameters as query-string values."""
        query: dict[str, str] = {}
        if self.prompt is not None:
            query["prompt"] = self.prompt
        if self.max_new_tokens is not None:
            query["max_new_tokens"] = str(self.max_new_tokens)
        return query


class CaptionTimings(BaseModel):
    """Wall time of each inference stage, in milliseconds."""

    model_config = ConfigDict(frozen=True)

    preprocess: float = Field(ge=0)
    encode: float = Field(ge=0)
    decode: float = Field(ge=0)
    total: float = Field(ge=0)


class CaptionResponse(BaseModel):
    """Body of a successful ``POST /v1/captions``."""

    model_config = ConfigDict(frozen=True)

    caption: str = Field(description="Decoded text as transformers' BLIP returns it.")
    model: str = Field(description="Name of the model that wrote the caption.")
    revision: str | None = Field(default=None, description="Its revision, as `GET /v1/model` reports it.")
    precision: str | None = Field(default=None, description='"fp32" or "int8", as `GET /v1/model` reports it.')
    tokens: int = Field(ge=0, description="Number of new tokens generated.")
    timings_ms: CaptionTimings


class ReadinessResponse(BaseModel):
    """Body of ``GET /health/ready`` on the inference service (200 when ready, 503 otherwise)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    status: str = Field(description='"ready" or "not_ready".')
    detail: str = Field(default="", description="One sentence saying why it is not ready.")
    state: str = Field(
        default="loading",
        description='"loading", "ready" or "failed" (the model failed to load; retrying soon will not help).',
    )
