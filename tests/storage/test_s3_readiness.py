"""A wrong endpoint, credential or bucket: the gateway runs, is not ready, and says which in one sentence."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from gateway.replicas.pool import CaptionTokensUnservableError
from tests.conftest import SettingsFactory
from tests.in_process import running_gateway
from tests.processes import free_port, gateway_process
from tests.s3_server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server, running_s3_server, s3_settings_for
from tests.storage.conftest import AppFactory, local_files
from tests.support import (
    FAKE_INFERENCE_URL,
    FakeInference,
    eventually,
    eventually_blocking,
    make_image_bytes,
    metric_value,
    problem_of,
)

CHECKS = "gateway_storage_checks_total"


async def assert_not_ready_saying(client: AsyncTestClient[Any], sentence: str) -> None:
    """Readiness 503 naming the cause, liveness fine, and an upload refused with a 503 problem."""
    ready = await client.get("/health/ready")
    assert ready.status_code == 503, ready.text
    assert ready.json()["status"] == "not_ready"
    assert ready.json()["database"] == "ok"
    assert ready.json()["storage"] == sentence
    assert (await client.get("/health/live")).status_code == 200
    refused = await client.post("/api/images", files={"image": ("a.jpg", make_image_bytes(), "image/jpeg")})
    assert refused.status_code == 503
    assert problem_of(refused)["title"] == "Storage unavailable"


@pytest.mark.parametrize(
    ("wrong", "sentence"),
    [
        (
            {"s3_secret_access_key": "not-the-secret-123"},
            "rejected the secret access key (GATEWAY_S3_SECRET_ACCESS_KEY).",
        ),
        ({"s3_access_key_id": "unknown-key-id"}, "does not know the access key id (GATEWAY_S3_ACCESS_KEY_ID)."),
    ],
    ids=["wrong-secret", "unknown-key-id"],
)
async def test_wrong_credentials_leave_the_gateway_not_ready_saying_which(
    make_s3_settings: SettingsFactory, open_app: AppFactory, s3_server: S3Server, wrong: dict[str, str], sentence: str
) -> None:
    settings = make_s3_settings(**wrong)
    async with open_app(settings) as client:
        await assert_not_ready_saying(client, f"The S3 endpoint {s3_server.url} {sentence}")
    assert local_files(settings.data_dir) == []


async def test_the_metrics_count_every_failed_check_of_the_object_store(
    make_s3_settings: SettingsFactory, open_app: AppFactory
) -> None:
    settings = make_s3_settings(s3_access_key_id="unknown-key-id", storage_check_interval_s=0.05)
    async with open_app(settings) as client:

        async def checks(outcome: str) -> float:
            return metric_value((await client.get("/metrics")).text, CHECKS, outcome=outcome)

        async def retried_twice() -> bool:
            return await checks("not_ready") >= 3  # the check at start, then two background retries

        await eventually(retried_twice, what="two background retries")
        assert await checks("ok") == 0


@pytest.mark.parametrize(
    ("malformed", "sentence"),
    [
        ({"s3_endpoint_url": "127.0.0.1:9000"}, "GATEWAY_S3_ENDPOINT_URL must be an http:// or https:// URL, not"),
        ({"s3_bucket": "Photos_2024"}, "GATEWAY_S3_BUCKET must be 3-63 lowercase letters, digits, '.' or '-', not"),
    ],
    ids=["endpoint-without-scheme", "bucket-name-s3-refuses"],
)
async def test_a_malformed_endpoint_or_bucket_leaves_the_gateway_up_and_not_ready(
    make_s3_settings: SettingsFactory, open_app: AppFactory, malformed: dict[str, str], sentence: str
) -> None:
    settings = make_s3_settings(**malformed)
    async with open_app(settings) as client:
        value = next(iter(malformed.values()))
        await assert_not_ready_saying(client, f"{sentence} '{value}'.")
    assert local_files(settings.data_dir) == []


async def test_an_unreachable_endpoint_leaves_the_gateway_not_ready(
    make_settings: SettingsFactory, open_app: AppFactory
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    async with open_app(make_settings(**s3_settings_for(endpoint))) as client:
        await assert_not_ready_saying(client, f"The S3 endpoint {endpoint} cannot be reached.")


async def test_a_missing_bucket_that_cannot_be_created_leaves_the_gateway_not_ready(
    make_settings: SettingsFactory, open_app: AppFactory, tmp_path: Path
) -> None:
    with running_s3_server(tmp_path / "s3-root", "--read-only") as server:  # CreateBucket fails there
        async with open_app(make_settings(**s3_settings_for(server.url))) as client:
            await assert_not_ready_saying(
                client, "The S3 bucket 'photos' does not exist and could not be created (InternalError)."
            )


async def test_the_gateway_turns_ready_once_the_endpoint_answers(
    make_settings: SettingsFactory, open_app: AppFactory, tmp_path: Path
) -> None:
    port = free_port()
    async with open_app(make_settings(**s3_settings_for(f"http://127.0.0.1:{port}"))) as client:
        assert (await client.get("/health/ready")).status_code == 503
        with running_s3_server(tmp_path / "s3-root", port=port):

            async def ready() -> bool:
                return (await client.get("/health/ready")).status_code == 200

            await eventually(ready, timeout_s=20, what="readiness")
            assert (await client.get("/health/ready")).json()["storage"] == "ok"
            assert metric_value((await client.get("/metrics")).text, CHECKS, outcome="ok") >= 1
            upload = await client.post("/api/images", files={"image": ("a.jpg", make_image_bytes(), "image/jpeg")})
            assert upload.status_code == 202, upload.text


@pytest.mark.slow
def test_a_gateway_process_with_wrong_credentials_keeps_running_not_ready(s3_server: S3Server, tmp_path: Path) -> None:
    env = {
        "GATEWAY_STORAGE_BACKEND": "s3",
        "GATEWAY_S3_ENDPOINT_URL": s3_server.url,
        "GATEWAY_S3_BUCKET": "photos",
        "GATEWAY_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "GATEWAY_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY + "-wrong",
        "GATEWAY_STORAGE_CHECK_INTERVAL_S": "0.2",
    }
    gateway = gateway_process(tmp_path, FAKE_INFERENCE_URL, **env)
    gateway.start()
    try:

        def failed_checks() -> float:
            return metric_value(httpx.get(f"{gateway.url}/metrics", timeout=10).text, CHECKS, outcome="not_ready")

        # The check at start and two background retries failed; the process must still be up.
        eventually_blocking(lambda: failed_checks() >= 3, timeout_s=20, what="two background retries")
        ready = httpx.get(f"{gateway.url}/health/ready", timeout=10)
        assert gateway.process is not None
        assert gateway.process.poll() is None
        assert ready.status_code == 503
        assert ready.json()["storage"] == (
            f"The S3 endpoint {s3_server.url} rejected the secret access key (GATEWAY_S3_SECRET_ACCESS_KEY)."
        )
    finally:
        gateway.stop()


async def test_a_refused_start_on_s3_leaves_no_client_or_task_open(
    make_s3_settings: SettingsFactory, fake_inference: FakeInference
) -> None:
    fake_inference.max_new_tokens_limit = 30  # the start is refused after the bucket was reached
    settings = make_s3_settings(caption_max_new_tokens=100)
    with pytest.raises(BaseExceptionGroup) as raised:
        async with running_gateway(settings, fake_inference):  # the lifespan in this test's own loop
            pass
    assert raised.group_contains(CaptionTokensUnservableError)
    assert [task.get_name() for task in asyncio.all_tasks() if task.get_name() == "s3-readiness"] == []
    gc.collect()  # an S3 client left open warns when collected, and warnings are errors here
