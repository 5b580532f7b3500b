"""Schemathesis, every phase and check, against the gateway's published OpenAPI schema, in process."""

from __future__ import annotations

import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.conftest import Reporter
from tests.contract.schemathesis_run import run_schemathesis
from tests.support import FakeInference

MAX_EXAMPLES = 20
# Schemathesis' default for a schema-valid request, plus the rejections the schema cannot express
# and API.md demands: random file bytes are refused by their content (400/413/415/422), and the
# cursor is an opaque token whose forgeries are 400.
ACCEPTED_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
CONTENT_REJECTIONS = [
    {"include-operation-id": "ApiImagesUpload", "statuses": ["400", "413", "415", "422"]},
    {"include-operation-id": "ApiImagesListImages", "statuses": ["400"]},
]


@pytest.mark.gateway_settings(workers=1)
def test_gateway_schema_holds_for_every_check(
    settings: GatewaySettings, fake_inference: FakeInference, report: Reporter
) -> None:
    operations = [
        {
            "include-operation-id": rule["include-operation-id"],
            "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED_STATUSES + rule["statuses"]}},
        }
        for rule in CONTENT_REJECTIONS
    ]
    # The event stream never ends: a request/response fuzzer cannot read it. tests/events pin it down.
    operations.append({"include-path": "/api/events", "enabled": False})
    app = create_app(settings, inference_transport=fake_inference.transport)
    run = run_schemathesis(app, "/docs/openapi.json", max_examples=MAX_EXAMPLES, operations=operations)
    report(f"schemathesis gateway: {run.requests} requests, {len(run.findings)} failures")
    assert run.requests > 200
    assert not run.findings, "\n".join(map(str, run.findings))
