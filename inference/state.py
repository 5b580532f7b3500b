"""The running parts of one inference app: settings, metrics, and the model once it is ready."""

from __future__ import annotations

from dataclasses import dataclass

from inference.batcher import Batcher
from inference.captioner import Captioner, ModelDescription
from inference.metrics import InferenceMetrics
from inference.settings import InferenceSettings

LOADING_DETAIL = "The model is loading."


@dataclass
class ModelState:
    """Readiness turns true only after the model is loaded and one warm-up caption ran."""

    ready: bool = False
    detail: str = LOADING_DETAIL
    captioner: Captioner | None = None
    batcher: Batcher | None = None
    description: ModelDescription | None = None


@dataclass
class InferenceServices:
    settings: InferenceSettings
    metrics: InferenceMetrics
    model: ModelState
