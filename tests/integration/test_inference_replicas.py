"""The whole gateway in front of several real HTTP inference replicas."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.replicas.pool import CaptionTokensUnservableError
from tests.conftest import SettingsFactory, wait_for_status
from tests.fake_inference_server import FakeInferenceServer
from tests.processes import free_port
from tests.support import REPO_ROOT, make_image_bytes, problem_of, upload


@pytest.fixture
def replicas() -> Iterator[list[FakeInferenceServer]]:
    with ExitStack() as stack:
        yield [stack.enter_context(FakeInferenceServer()) for _ in range(2)]


@pytest.fixture
async def gateway(
    make_settings: SettingsFactory, replicas: list[FakeInferenceServer]
) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = make_settings(inference_url=",".join(server.url for server in replicas), inference_eject_s=0.2)
    async with AsyncTestClient(app=create_app(settings), raise_server_exceptions=False) as client:
        yield client


async def test_health_lists_each_replica_and_is_ready_while_any_is(
    gateway: AsyncTestClient[Any], replicas: list[FakeInferenceServer]
) -> None:
    replicas[0].up = False
    inference = (await gateway.get("/health/ready")).json()["inference"]
    assert inference["ready"] is True
    assert inference["detail"] == "1 of 2 inference replicas are ready."
    assert inference["replicas"] == [
        {"url": replicas[0].url, "state": "unknown", "in_flight": 0, "detail": "The fake model is down."},
        {"url": replicas[1].url, "state": "ready", "in_flight": 0, "detail": "The fake model is ready."},
    ]


async def test_every_replica_down_ends_unavailable_then_one_coming_back_requeues_the_caption(
    gateway: AsyncTestClient[Any], replicas: list[FakeInferenceServer]
) -> None:
    for server in replicas:
        server.up = False
    ids = [await upload(gateway, make_image_bytes(color=(40 * n, 0, 0))) for n in range(2)]
    for image_id in ids:
        assert (await wait_for_status(gateway, image_id))["caption"]["status"] == "unavailable"
    assert not (await gateway.get("/health/ready")).json()["inference"]["ready"]
    replicas[1].up = True
    for image_id in ids:
        details = await wait_for_status(gateway, image_id, statuses=("completed",))
        assert details["caption"]["text"].startswith("a served caption")
    assert replicas[1].captions_served == 2
    assert replicas[0].captions_served == 0


async def test_metrics_count_the_captions_each_replica_served(
    gateway: AsyncTestClient[Any], replicas: list[FakeInferenceServer]
) -> None:
    ids = [await upload(gateway, make_image_bytes(color=(10 * n, 0, 0))) for n in range(8)]
    for image_id in ids:
        assert (await wait_for_status(gateway, image_id))["status"] == "completed"
    assert sum(server.captions_served for server in replicas) == 8
    text = (await gateway.get("/metrics")).text
    for server in replicas:  # every replica has its series, also one that served nothing (ties go at random)
        line = re.search(rf'gateway_inference_replica_requests_total{{replica="{server.url}"}} (\S+)', text)
        assert line is not None, text
        assert float(line.group(1)) == server.captions_served


async def test_gateway_refuses_to_start_with_more_new_tokens_than_a_replica_can_serve(
    make_settings: SettingsFactory, replicas: list[FakeInferenceServer]
) -> None:
    replicas[1].max_new_tokens_limit = 30
    settings = make_settings(inference_url=",".join(s.url for s in replicas), caption_max_new_tokens=100)
    with pytest.raises(BaseExceptionGroup) as raised:
        async with AsyncTestClient(app=create_app(settings)):
            pass
    assert raised.group_contains(CaptionTokensUnservableError, match="GATEWAY_CAPTION_MAX_NEW_TOKENS=100 is more")


def test_gateway_process_exits_at_start_saying_which_setting_no_replica_can_serve(
    tmp_path: Path, replicas: list[FakeInferenceServer]
) -> None:
    replicas[0].max_new_tokens_limit = 30
    env = {
        **os.environ,
        "GATEWAY_INFERENCE_URL": replicas[0].url,
        "GATEWAY_CAPTION_MAX_NEW_TOKENS": "100",
        "GATEWAY_PORT": str(free_port()),
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_LOG_DIR": str(tmp_path / "logs"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.sqlite3'}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "gateway"], cwd=REPO_ROOT, env=env, capture_output=True, timeout=120, check=False
    )
    output = (done.stdout + done.stderr).decode()
    assert done.returncode != 0, output
    assert "gateway_start_refused" in output
    assert f"is more than the inference replica at {replicas[0].url} can serve" in output


async def test_a_model_that_failed_to_load_makes_captions_unavailable_at_once_and_requeued_when_it_is_back(
    make_settings: SettingsFactory, replicas: list[FakeInferenceServer]
) -> None:
    for server in replicas:
        server.load_failed = True
    settings = make_settings(
        inference_url=",".join(s.url for s in replicas), inference_attempts=4, inference_backoff_s=5.0
    )
    async with AsyncTestClient(app=create_app(settings), raise_server_exceptions=False) as gateway:
        started = time.monotonic()
        image_id = await upload(gateway)
        details = await wait_for_status(gateway, image_id)
        assert time.monotonic() - started < 5.0  # no 3 timed retries of 5 s or more
        assert details["caption"]["status"] == "unavailable"
        assert "failed to load" in details["error"]
        assert all(server.request_ids == [] for server in replicas)
        replicas[0].load_failed = False
        details = await wait_for_status(gateway, image_id, statuses=("completed",))
        assert details["caption"]["text"].startswith("a served caption")


async def test_recaptioning_the_old_models_captions_is_refused_while_replicas_serve_different_models(
    gateway: AsyncTestClient[Any], replicas: list[FakeInferenceServer]
) -> None:
    replicas[0].revision, replicas[1].revision = "r1", "r2"  # a model switch half rolled out

    refused = await gateway.post("/api/captions/recaption", json={"all": False})

    assert refused.status_code == 409
    problem = problem_of(refused)
    assert problem["type"].endswith("replicas-disagree")
    assert "fake-blip@r1" in problem["detail"] and "fake-blip@r2" in problem["detail"]
    assert (await gateway.post("/api/captions/recaption", json={"all": True})).status_code == 202, "all needs no model"
    replicas[0].revision = "r2"  # the roll-out finished
    assert (await gateway.post("/api/captions/recaption", json={"all": False})).status_code == 202
