"""RFC 9457 problem details: the error body both services emit and the gateway parses."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:image-pipeline:problem:"
"""Both services name their problem types ``PROBLEM_TYPE_PREFIX + slug``."""
MODEL_LOAD_FAILED_SLUG = "model-load-failed"
"""The inference service's 503 when its model failed to load: retrying soon will not help."""


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str = Field(default="about:blank", description="URI reference naming the problem type.")
    title: str = Field(description="Short, human-readable summary of the problem type.")
    status: int = Field(ge=100, le=599, description="HTTP status code of this occurrence.")
    detail: str = Field(default="", description="Human sentence naming the cause.")
    instance: str | None = Field(default=None, description="URI of this occurrence, if any.")
