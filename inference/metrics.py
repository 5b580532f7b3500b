"""Prometheus instruments of one inference app: requests, batch sizes, queue depth, stage latency."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from inference.captioner import BatchTimings

LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32)


class InferenceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "inference_requests_total", "Caption requests by HTTP status.", ["status"], registry=self.registry
        )
        self.rejected = Counter(
            "inference_rejected_total", "Requests refused before the model, by reason.", ["reason"],
            registry=self.registry,
        )  # fmt: skip
        self.batch_size = Histogram(
            "inference_batch_size", "Images per model call.", buckets=(1, 2, 4, 8, 16, 32, 64), registry=self.registry
        )
        self.queue_depth = Gauge("inference_queue_depth", "Requests waiting for the model.", registry=self.registry)
        self.queue_wait_seconds = Histogram(
            "inference_queue_wait_seconds", "Time a request waited in the queue.", buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )  # fmt: skip
        self.stage_seconds = Histogram(
            "inference_stage_duration_seconds", "Time per model call and stage.", ["stage"],
            buckets=LATENCY_BUCKETS_S, registry=self.registry,
        )  # fmt: skip
        self.ready = Gauge("inference_ready", "1 once the model is loaded and warmed up.", registry=self.registry)
        self.execution_provider = Gauge(
            "inference_execution_provider", "1 for each execution provider the model's sessions really have.",
            ["provider", "device"], registry=self.registry,
        )  # fmt: skip
        self.runtime = Gauge(
            "inference_runtime", "1 for what computes the graphs (INFERENCE_RUNTIME, resolved).",
            ["runtime"], registry=self.registry,
        )  # fmt: skip

    def observe_runtime(self, runtime: str | None) -> None:
        if runtime is not None:
            self.runtime.labels(runtime).set(1)

    def observe_providers(self, providers: list[str], device: str) -> None:
        for provider in providers:
            self.execution_provider.labels(provider, device).set(1)

    def observe_timings(self, timings: BatchTimings) -> None:
        self.stage_seconds.labels("preprocess").observe(timings.preprocess_ms / 1000)
        self.stage_seconds.labels("encode").observe(timings.encode_ms / 1000)
        self.stage_seconds.labels("decode").observe(timings.decode_ms / 1000)
