"""Fixtures for the blob store tests: a real S3 server per test, and apps wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.conftest import SettingsFactory
from tests.s3_server import S3Server, running_s3_server, s3_settings_for
from tests.support import FakeInference

AppFactory = Callable[..., AbstractAsyncContextManager[AsyncTestClient[Any]]]


@pytest.fixture
def s3_server(tmp_path: Path) -> Iterator[S3Server]:
    with running_s3_server(tmp_path / "s3-root") as server:
        yield server


@pytest.fixture
def make_s3_settings(make_settings: SettingsFactory, s3_server: S3Server) -> SettingsFactory:
    def factory(**overrides: Any) -> GatewaySettings:
        return make_settings(**s3_settings_for(s3_server.url, **overrides))

    return factory


@pytest.fixture
def open_app(fake_inference: FakeInference) -> AppFactory:
    """``async with open_app(settings) as client``: one gateway app running its lifespan."""

    @asynccontextmanager
    async def opened(settings: GatewaySettings) -> AsyncIterator[AsyncTestClient[Any]]:
        app = create_app(settings, inference_transport=fake_inference.transport)
        async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
            yield client

    return opened


def local_files(data_dir: Path) -> list[str]:
    """Every file left in a data dir, relative: with the S3 backend only spools may ever appear."""
    return sorted(path.relative_to(data_dir).as_posix() for path in data_dir.rglob("*") if path.is_file())
