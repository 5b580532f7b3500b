"""Shared fixtures: settings in a temporary dir, the app with a faked inference service."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.support import FAKE_INFERENCE_URL, FINAL_STATUSES, FakeInference

SettingsFactory = Callable[..., GatewaySettings]


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    def factory(**overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "log_dir": tmp_path / "logs",
            "database_url": f"sqlite:///{tmp_path / 'gateway.sqlite3'}",
            "inference_url": FAKE_INFERENCE_URL,
            "inference_attempts": 2,
            "inference_backoff_s": 0.01,
            "inference_backoff_max_s": 0.02,
            "inference_probe_interval_s": 0.1,
            "poll_interval_s": 0.2,
        }
        values.update(overrides)
        return GatewaySettings(**values)

    return factory


@pytest.fixture
def fake_inference() -> FakeInference:
    return FakeInference()


@pytest.fixture
def settings(make_settings: SettingsFactory, request: pytest.FixtureRequest) -> GatewaySettings:
    """Settings for the app under test; ``@pytest.mark.gateway_settings(...)`` overrides (closest wins)."""
    overrides: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("gateway_settings"))):
        overrides.update(marker.kwargs)
    return make_settings(**overrides)


@pytest.fixture
async def client(settings: GatewaySettings, fake_inference: FakeInference) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(settings, inference_transport=fake_inference.transport)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as test_client:
        yield test_client


async def wait_for_status(
    client: AsyncTestClient[Any], image_id: str, statuses: tuple[str, ...] = FINAL_STATUSES, timeout_s: float = 20
) -> dict[str, Any]:
    """Poll the details endpoint until the image reaches one of ``statuses``."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = await client.get(f"/api/images/{image_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in statuses:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"image {image_id} stuck in {body['status']}: {body}")
        await asyncio.sleep(0.05)


ModelExporter = Callable[..., Path]


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory: pytest.TempPathFactory) -> ModelExporter:
    """Export a model once per session with the real CLI, in a child process (torch stays out of here)."""
    cache: dict[tuple[str, str, int | None], Path] = {}

    def export(model: str = "tiny-random", precision: str = "fp32", seed: int | None = None) -> Path:
        """``seed`` (tiny models): another model of the same shape, revision ``seed-<seed>``."""
        key = (model, precision, seed)
        if key not in cache:
            output = tmp_path_factory.mktemp("models") / f"{model}-{precision}{'' if seed is None else f'-seed{seed}'}"
            command = [sys.executable, "-m", "inference.export", "--model", model, "--output", str(output),
                       "--precision", precision, *([] if seed is None else ["--seed", str(seed)])]  # fmt: skip
            result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
            assert result.returncode == 0, result.stdout + result.stderr
            cache[key] = output
        return cache[key]

    return export


Reporter = Callable[[str], None]
MEASUREMENTS = pytest.StashKey[list[str]]()


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Reporter:
    """Record a measurement a test makes (parity, agreement); printed at the end of the run."""
    lines = request.config.stash.setdefault(MEASUREMENTS, [])
    return lines.append


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(MEASUREMENTS, [])
    if lines:
        terminalreporter.section("measured by the tests")
        for line in lines:
            terminalreporter.write_line(line)
