"""Serving never imports torch or transformers: a child process serves a caption and proves it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ModelExporter
from tests.support import REPO_ROOT, make_image_bytes

pytestmark = pytest.mark.slow

SERVE_ONE_CAPTION = textwrap.dedent(
    """
    import json, sys, time
    from litestar.testing import TestClient
    from inference.app import create_app

    with TestClient(app=create_app()) as client:
        deadline = time.monotonic() + 60
        while client.get("/health/ready").status_code != 200:
            assert time.monotonic() < deadline, client.get("/health/ready").text
            time.sleep(0.05)
        response = client.post("/v1/captions", content=sys.stdin.buffer.read(), headers={"Content-Type": "image/jpeg"})
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "transformers", "optimum"))
    print(json.dumps({"status": response.status_code, "body": response.json(), "loaded": loaded}))
    """
)


def test_serving_a_caption_imports_neither_torch_nor_transformers(
    exported_model: ModelExporter, tmp_path: object
) -> None:
    env = {**os.environ, "INFERENCE_MODEL": str(exported_model("tiny-random")), "INFERENCE_LOG_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", SERVE_ONE_CAPTION], input=make_image_bytes((80, 60)), capture_output=True,
        cwd=REPO_ROOT, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert report["status"] == 200
    assert report["body"]["caption"]
    assert report["loaded"] == []
