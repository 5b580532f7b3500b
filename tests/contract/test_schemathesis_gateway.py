"""Schemathesis, every phase and check, against the gateway's published OpenAPI schema, in process.

Strict: no status is tolerated beyond Schemathesis' own defaults, and any failed check fails the
test. What a schema cannot say (which bytes are a JPEG or a PNG, that an Idempotency-Key belongs
to one file) is told to the generator in ``schemathesis_hooks``, not forgiven in the checks.
"""

from __future__ import annotations

import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.conftest import Reporter
from tests.contract.schemathesis_run import run_schemathesis
from tests.support import FakeInference

MAX_EXAMPLES = 30
EVENTS_READ_S = 0.5


@pytest.mark.gateway_settings(workers=1)
def test_gateway_schema_holds_for_every_check(
    settings: GatewaySettings, fake_inference: FakeInference, report: Reporter
) -> None:
    # The event stream never ends: Schemathesis reads it for EVENTS_READ_S, then checks the events
    # it got (a stream that sent none by then is an empty 200). tests/events pin the stream down.
    operations = [{"include-path": "/api/events", "request-timeout": EVENTS_READ_S}]
    app = create_app(settings, inference_transport=fake_inference.transport)
    run = run_schemathesis(app, "/docs/openapi.json", max_examples=MAX_EXAMPLES, operations=operations)
    report(f"schemathesis gateway: {run.requests} requests, {len(run.findings)} failures")
    assert run.requests > 200
    assert not run.findings, "\n".join(map(str, run.findings))
