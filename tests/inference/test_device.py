"""INFERENCE_DEVICE with the real onnxruntime of this machine (its CPU build): what is asked, what is had.

No GPU is reachable here, so the CUDA path is proven the only way it can be: ``cuda`` refuses to
start, in one sentence, and ``/v1/model`` and ``/metrics`` name the providers the sessions really
have (not ``onnxruntime.get_available_providers()``, which lists Azure's too).
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest
from litestar.testing import AsyncTestClient

from contracts.model_info import ModelInfo
from inference.app import create_app
from inference.sessions import CPU_PROVIDER, CUDA_PROVIDER, DeviceSetting, requested_providers
from inference.settings import InferenceSettings
from tests.conftest import ModelExporter
from tests.inference.test_api import post_image, settings_for, wait_until_settled
from tests.support import make_image_bytes, problem_of

CPU_BUILD = CUDA_PROVIDER not in ort.get_available_providers()
needs_cpu_build = pytest.mark.skipif(not CPU_BUILD, reason="this onnxruntime build has the CUDA provider")


@needs_cpu_build
async def test_cuda_without_the_cuda_provider_refuses_to_start_in_one_sentence(
    exported_model: ModelExporter, tmp_path: Path
) -> None:
    app = create_app(settings_for(tmp_path, model=str(exported_model("tiny-random")), device="cuda"))
    async with AsyncTestClient(app=app) as client:
        readiness = await wait_until_settled(client)
        assert (readiness["status"], readiness["state"]) == ("not_ready", "failed")
        expected = (
            f"No model can be served: INFERENCE_DEVICE=cuda, but this onnxruntime build ({ort.__version__}, "
            f"providers {', '.join(ort.get_available_providers())}) has no CUDA execution provider: install the "
            "`gpu` extra (onnxruntime-gpu) in place of onnxruntime, or set INFERENCE_DEVICE=auto or cpu."
        )
        assert readiness["detail"] == expected
        assert readiness["detail"].count(". ") == 0, "one sentence"
        response = await post_image(client, make_image_bytes())
        assert response.status_code == 503
        assert "retry-after" not in response.headers
        problem = problem_of(response)
        assert (problem["type"], problem["detail"]) == ("urn:image-pipeline:problem:model-load-failed", expected)
        info = ModelInfo.model_validate((await client.get("/v1/model")).json())
        assert (info.ready, info.providers, info.device) == (False, [], None)


@needs_cpu_build
@pytest.mark.parametrize("device", ["auto", "cpu"])
async def test_model_info_and_metrics_name_the_providers_the_sessions_really_have(
    exported_model: ModelExporter, tmp_path: Path, device: str
) -> None:
    model = str(exported_model("tiny-random"))
    app = create_app(settings_for(tmp_path, model=model, device=device, runtime="onnxruntime"))
    async with AsyncTestClient(app=app) as client:
        assert (await wait_until_settled(client))["status"] == "ready"
        info = ModelInfo.model_validate((await client.get("/v1/model")).json())
        metrics = (await client.get("/metrics")).text
    assert info.providers == info.execution_providers == [CPU_PROVIDER]
    assert info.device == "cpu"
    assert info.batching.max_batch == 1
    assert 'inference_execution_provider{device="cpu",provider="CPUExecutionProvider"} 1.0' in metrics
    for provider in set(ort.get_available_providers()) - {CPU_PROVIDER}:  # e.g. Azure: available, never used
        assert provider not in metrics
        assert provider not in info.providers


@pytest.mark.parametrize(
    ("device", "with_cuda_build", "providers"),
    [
        ("cpu", False, [CPU_PROVIDER]),
        ("cpu", True, [CPU_PROVIDER]),
        ("auto", False, [CPU_PROVIDER]),
        ("auto", True, [CUDA_PROVIDER, CPU_PROVIDER]),
        ("cuda", True, [CUDA_PROVIDER, CPU_PROVIDER]),
    ],
)
def test_each_device_setting_asks_onnxruntime_for_its_providers(
    device: DeviceSetting, with_cuda_build: bool, providers: list[str]
) -> None:
    build = [CUDA_PROVIDER, CPU_PROVIDER] if with_cuda_build else ["AzureExecutionProvider", CPU_PROVIDER]
    assert requested_providers(device, build) == providers


@pytest.mark.parametrize(
    ("setting", "device", "max_batch"),
    [(None, "cpu", 1), (None, "cuda", 16), (4, "cpu", 4), (4, "cuda", 4)],
)
def test_the_batch_size_defaults_to_one_on_cpu_and_sixteen_on_cuda(
    setting: int | None, device: str, max_batch: int
) -> None:
    assert InferenceSettings(max_batch=setting).max_batch_on(device) == max_batch


def test_an_unknown_device_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="device"):
        InferenceSettings(device="tpu")  # type: ignore[arg-type]
