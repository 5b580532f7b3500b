"""Schemathesis, every phase and check, against the inference service's OpenAPI schema, in process.

Strict: no status is tolerated beyond Schemathesis' own defaults. The served schema bounds
``max_new_tokens`` by the loaded model's limit (tiny-random: 64); ``schemathesis_hooks`` sends real
JPEG/PNG bodies and keeps positive prompts within the positions left next to ``max_new_tokens``.
"""

from __future__ import annotations

from pathlib import Path

from inference.app import create_app
from inference.settings import InferenceSettings
from tests.conftest import ModelExporter, Reporter
from tests.contract.schemathesis_run import run_schemathesis

MAX_EXAMPLES = 30


def test_inference_schema_holds_for_every_check(
    exported_model: ModelExporter, tmp_path: Path, report: Reporter
) -> None:
    settings = InferenceSettings(model=str(exported_model("tiny-random")), log_dir=tmp_path, threads=1)
    app = create_app(settings)
    run = run_schemathesis(app, "/docs/openapi.json", max_examples=MAX_EXAMPLES, ready_path="/health/ready")
    report(f"schemathesis inference: {run.requests} requests, {len(run.findings)} failures")
    assert run.requests > 50
    assert not run.findings, "\n".join(map(str, run.findings))
