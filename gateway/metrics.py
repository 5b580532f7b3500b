"""Prometheus instruments of one gateway app, named once, on their own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

STAGE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class GatewayMetrics:
    """Counters and histograms a single app instance updates; exported at ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.uploads_accepted = Counter(
            "gateway_uploads_accepted_total", "Uploads accepted (202).", registry=self.registry
        )
        self.uploads_rejected = Counter(
            "gateway_uploads_rejected_total", "Uploads refused, by reason.", ["reason"], registry=self.registry
        )
        self.stage_seconds = Histogram(
            "gateway_stage_duration_seconds",
            "Time spent in each pipeline stage.",
            ["stage", "outcome"],
            buckets=STAGE_BUCKETS_S,
            registry=self.registry,
        )
        self.images_finished = Counter(
            "gateway_images_finished_total", "Images that reached a final status.", ["status"], registry=self.registry
        )
        self.inference_calls = Counter(
            "gateway_inference_calls_total",
            "Caption requests by outcome (completed, reused, unavailable, rejected).",
            ["outcome"],
            registry=self.registry,
        )
        self.images_in_flight = Gauge(
            "gateway_images_in_flight", "Images a worker of this process holds.", registry=self.registry
        )
        self.images_by_status = Gauge(
            "gateway_images", "Images in the database, by status.", ["status"], registry=self.registry
        )
        self.recaptions = Counter(
            "gateway_recaptions_total",
            "Re-captions saved, by outcome (done, failed).",
            ["outcome"],
            registry=self.registry,
        )
        self.requeued = Counter(
            "gateway_images_requeued_total", "Images put back to pending.", ["trigger"], registry=self.registry
        )
        self.replica_requests = Counter(
            "gateway_inference_replica_requests_total",
            "Caption requests sent, per inference replica.",
            ["replica"],
            registry=self.registry,
        )
        self.replica_failures = Counter(
            "gateway_inference_replica_failures_total",
            "Caption requests that failed (unreachable, timeout, 429, 5xx), per inference replica.",
            ["replica"],
            registry=self.registry,
        )
        self.replica_in_flight = Gauge(
            "gateway_inference_replica_in_flight",
            "Caption requests on their way, per inference replica.",
            ["replica"],
            registry=self.registry,
        )
        self.replica_ejections = Counter(
            "gateway_inference_replica_ejections_total",
            "Times an inference replica was taken out for a back-off.",
            ["replica"],
            registry=self.registry,
        )

        self.storage_checks = Counter(
            "gateway_storage_checks_total",
            "Checks of the object store (S3 backend) by outcome: ok, or not_ready (it could not be used).",
            ["outcome"],
            registry=self.registry,
        )

        self.webhook_deliveries = Counter(
            "gateway_webhook_deliveries_total",
            "Webhook delivery attempts by outcome (delivered, failed, gave_up, disabled).",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook_failures = Counter(
            "gateway_webhook_failures_total", "Webhook attempts without a 2xx answer.", registry=self.registry
        )
        self.webhook_oldest_pending = Gauge(
            "gateway_webhook_oldest_pending_seconds",
            "Age of the oldest webhook delivery not yet delivered (0 when none).",
            registry=self.registry,
        )

    def add_replica(self, url: str) -> None:
        """Show a replica's series at 0 from the moment it joins, not from its first request."""
        for family in (self.replica_requests, self.replica_failures, self.replica_ejections):
            family.labels(url)
        self.replica_in_flight.labels(url).set(0)

    def set_images_by_status(self, counts: dict[str, int]) -> None:
        for status, count in counts.items():
            self.images_by_status.labels(status).set(count)
