"""Schemathesis, every phase and check, against the inference service's OpenAPI schema, in process."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.app import create_app
from inference.settings import InferenceSettings
from tests.conftest import ModelExporter, Reporter
from tests.contract.schemathesis_run import run_schemathesis

MAX_EXAMPLES = 10
# Failures whose fix lives outside this test's reach, by check code. Delete an entry once its fix
# is merged: the run must then be clean of it too.
PENDING_ELSEWHERE = {
    "ST204": "inference/problems.py drops the Allow header of Litestar's 405 (the gateway's map keeps it); "
    "to be fixed with the shared problem rendering (issue 8 §9)",
}
# Issue 8 §4: a caption longer than tiny-random's 64 positions answers 500 instead of a 422 naming
# the limit; fixed on the inference branch. Until it is merged, such a 500 makes this test xfail
# (visibly, never pass); any other failure fails it.
CAPTIONS = "POST http://testserver/v1/captions"
POSITION_LIMIT_500 = {"ST101", "ST103"}


def test_inference_schema_holds_for_every_check(
    exported_model: ModelExporter, tmp_path: Path, report: Reporter
) -> None:
    settings = InferenceSettings(model=str(exported_model("tiny-random")), log_dir=tmp_path, threads=1)
    app = create_app(settings)
    run = run_schemathesis(app, "/docs/openapi.json", max_examples=MAX_EXAMPLES, ready_path="/health/ready")
    pending = [finding for finding in run.findings if finding.code in PENDING_ELSEWHERE]
    position_500 = [f for f in run.findings if f.code in POSITION_LIMIT_500 and f.operation.startswith(CAPTIONS)]
    failures = [finding for finding in run.findings if finding not in pending + position_500]
    report(
        f"schemathesis inference: {run.requests} requests, {len(failures)} failures "
        f"(+{len(pending)} pending elsewhere: {sorted({finding.code for finding in pending})}, "
        f"{len(position_500)} captions 500 beyond the model's positions)"
    )
    assert not failures, "\n".join(map(str, failures))
    assert run.requests > 50
    if position_500:
        pytest.xfail(f"issue 8 §4 not merged yet: {position_500[0]}")
