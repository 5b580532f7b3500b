"""When the database or the disk fails: 503 problem, and nothing half-written stays behind."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from gateway.deps import GatewayServices
from gateway.settings import GatewaySettings
from tests.support import make_image_bytes, problem_of

pytestmark = pytest.mark.gateway_settings(workers=0)


def services_of(client: AsyncTestClient[Any]) -> GatewayServices:
    services: GatewayServices = client.app.state.services
    return services


def break_database(client: AsyncTestClient[Any]) -> None:
    with services_of(client).database.engine.begin() as connection:
        connection.execute(text("DROP TABLE images"))


async def test_upload_while_the_database_fails_is_503_and_keeps_no_file(
    client: AsyncTestClient[Any], settings: GatewaySettings
) -> None:
    break_database(client)
    response = await client.post("/api/images", files={"image": ("a.jpg", make_image_bytes(), "image/jpeg")})
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    problem_of(response)
    assert [path for path in settings.data_dir.rglob("*") if path.is_file()] == []


@pytest.mark.parametrize("path", ["/api/images", "/api/stats", "/api/images/" + "0" * 32])
async def test_reads_while_the_database_fails_are_503(client: AsyncTestClient[Any], path: str) -> None:
    break_database(client)
    response = await client.get(path)
    assert response.status_code == 503
    problem_of(response)


async def test_readiness_fails_without_the_database(client: AsyncTestClient[Any]) -> None:
    database = services_of(client).database
    database_file = Path(str(database.engine.url.database))
    database.engine.dispose()
    for path in database_file.parent.glob(database_file.name + "*"):
        path.unlink()
    database_file.mkdir()  # a directory where the database file was: every new connection fails
    response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
    assert (await client.get("/health/live")).status_code == 200


async def test_upload_while_the_disk_fails_is_503(client: AsyncTestClient[Any], settings: GatewaySettings) -> None:
    uploads = settings.data_dir / "uploads"
    shutil.rmtree(uploads)
    uploads.write_text("a file where a directory should be")
    response = await client.post("/api/images", files={"image": ("a.jpg", make_image_bytes(), "image/jpeg")})
    assert response.status_code == 503
    assert "disk" in problem_of(response)["detail"]
    assert (await client.get("/api/stats")).json()["total"] == 0
