"""Schemathesis, every phase and check, against the inference service's OpenAPI schema, in process."""

from __future__ import annotations

from pathlib import Path

from inference.app import create_app
from inference.settings import InferenceSettings
from tests.conftest import ModelExporter, Reporter
from tests.contract.schemathesis_run import run_schemathesis

MAX_EXAMPLES = 10
# Schemathesis' default for a schema-valid request, plus the 422 the schema cannot express: the
# contract allows max_new_tokens up to 128, and a model with fewer positions (tiny-random has 64)
# refuses a request beyond them with a 422 naming its limit (/v1/model reports it).
ACCEPTED_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]


def test_inference_schema_holds_for_every_check(
    exported_model: ModelExporter, tmp_path: Path, report: Reporter
) -> None:
    settings = InferenceSettings(model=str(exported_model("tiny-random")), log_dir=tmp_path, threads=1)
    operations = [
        {
            "include-path": "/v1/captions",
            "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED_STATUSES}},
        }
    ]
    app = create_app(settings)
    run = run_schemathesis(
        app, "/docs/openapi.json", max_examples=MAX_EXAMPLES, ready_path="/health/ready", operations=operations
    )
    report(f"schemathesis inference: {run.requests} requests, {len(run.findings)} failures")
    assert run.requests > 50
    assert not run.findings, "\n".join(map(str, run.findings))
