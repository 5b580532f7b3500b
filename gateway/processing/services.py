"""The collaborators the pipeline, the worker and the re-captioner are built from, named once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from contracts.captions import CaptionParams
from gateway.metrics import GatewayMetrics
from gateway.persistence.db import Database
from gateway.replicas.client import InferenceClient
from gateway.settings import GatewaySettings
from gateway.storage import BlobStore


@dataclass(frozen=True)
class ProcessingServices:
    """One of each, shared by every processing loop of a gateway (created in the app's lifespan)."""

    settings: GatewaySettings
    database: Database
    storage: BlobStore
    inference: InferenceClient
    metrics: GatewayMetrics

    @cached_property
    def caption_params(self) -> CaptionParams:
        """What every caption request asks for, an upload's or a re-caption's."""
        return CaptionParams(max_new_tokens=self.settings.caption_max_new_tokens)
