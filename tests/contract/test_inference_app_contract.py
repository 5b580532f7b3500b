"""The real inference app (tiny-random, exported by the real CLI) answers exactly the contract shapes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from contracts.captions import CaptionResponse, ReadinessResponse
from contracts.model_info import ModelInfo
from contracts.problem import Problem
from inference.app import create_app
from inference.settings import InferenceSettings
from tests.conftest import ModelExporter
from tests.support import make_image_bytes

pytestmark = pytest.mark.slow


@pytest.fixture
async def inference_client(exported_model: ModelExporter, tmp_path: Path) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = InferenceSettings(model=str(exported_model("tiny-random")), log_dir=tmp_path, threads=1)
    async with AsyncTestClient(app=create_app(settings)) as client:
        deadline = time.monotonic() + 60
        while (await client.get("/health/ready")).status_code != 200:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        yield client


async def test_caption_model_and_readiness_bodies_validate_against_contracts(
    inference_client: AsyncTestClient[Any],
) -> None:
    caption = await inference_client.post(
        "/v1/captions", content=make_image_bytes((64, 64)), params={"max_new_tokens": 5}
    )
    assert caption.status_code == 200
    body = CaptionResponse.model_validate(caption.json())
    assert set(caption.json()) == set(CaptionResponse.model_fields)
    assert 1 <= body.tokens <= 5
    info = ModelInfo.model_validate((await inference_client.get("/v1/model")).json())
    assert info.is_test_model and info.ready and info.name == "tiny-random"
    ready = ReadinessResponse.model_validate((await inference_client.get("/health/ready")).json())
    assert ready.status == "ready" and "TEST model" in ready.detail
    refused = await inference_client.post("/v1/captions", content=b"GIF89a....")
    assert Problem.model_validate(refused.json()).status == 415
