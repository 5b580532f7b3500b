"""The running parts of one inference app: settings, metrics, and the model once it is ready."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from inference.batcher import Batcher
from inference.captioner import Captioner, ModelDescription
from inference.metrics import InferenceMetrics
from inference.settings import InferenceSettings

LOADING_DETAIL = "The model is loading."


class ModelPhase(StrEnum):
    """Where the model is; the wire value of ``ReadinessResponse.state``."""

    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    """The load failed: the service stays up to say why, and retrying soon will not help."""


@dataclass
class ModelState:
    """Readiness turns true only after the model is loaded and one warm-up caption ran."""

    phase: ModelPhase = ModelPhase.LOADING
    detail: str = LOADING_DETAIL
    captioner: Captioner | None = None
    batcher: Batcher | None = None
    description: ModelDescription | None = None

    @property
    def ready(self) -> bool:
        return self.phase is ModelPhase.READY


@dataclass
class InferenceServices:
    settings: InferenceSettings
    metrics: InferenceMetrics
    model: ModelState
