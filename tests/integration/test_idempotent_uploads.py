"""Idempotency-Key on POST /api/images: one image per key and file, across gateways on one database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from gateway.app import create_app
from gateway.deps import GatewayServices
from gateway.settings import GatewaySettings
from tests.conftest import SettingsFactory
from tests.repository_backends import BACKENDS, database_url_for
from tests.support import FakeInference, make_image_bytes, problem_of

pytestmark = pytest.mark.gateway_settings(workers=0)
PHOTO = make_image_bytes((64, 48))
OTHER_PHOTO = make_image_bytes((48, 64))


def upload(data: bytes = PHOTO, name: str = "cat.jpg") -> dict[str, Any]:
    return {"files": {"image": (name, data, "image/jpeg")}}


async def image_total(client: AsyncTestClient[Any]) -> int:
    total: int = (await client.get("/api/stats")).json()["total"]
    return total


async def test_same_key_and_bytes_answer_the_first_202_again_without_a_new_image(
    client: AsyncTestClient[Any],
) -> None:
    first = await client.post("/api/images", headers={"Idempotency-Key": "k-1"}, **upload(name="cat.jpg"))
    again = await client.post("/api/images", headers={"Idempotency-Key": "k-1"}, **upload(name="renamed.png"))
    assert first.status_code == again.status_code == 202
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert await image_total(client) == 1


async def test_same_key_with_other_bytes_is_422_and_stores_nothing(client: AsyncTestClient[Any]) -> None:
    assert (await client.post("/api/images", headers={"Idempotency-Key": "k-2"}, **upload())).status_code == 202
    response = await client.post("/api/images", headers={"Idempotency-Key": "k-2"}, **upload(OTHER_PHOTO))
    assert response.status_code == 422
    assert "other file bytes" in problem_of(response)["detail"]
    assert await image_total(client) == 1


async def test_a_rejected_upload_is_not_remembered_so_its_key_can_be_retried(client: AsyncTestClient[Any]) -> None:
    refused = await client.post("/api/images", headers={"Idempotency-Key": "k-3"}, **upload(b"GIF89a not a jpeg"))
    assert refused.status_code == 415
    accepted = await client.post("/api/images", headers={"Idempotency-Key": "k-3"}, **upload())
    assert accepted.status_code == 202


async def test_a_key_whose_image_was_deleted_uploads_anew(client: AsyncTestClient[Any]) -> None:
    first = await client.post("/api/images", headers={"Idempotency-Key": "k-4"}, **upload())
    assert (await client.delete(first.headers["location"])).status_code == 204
    again = await client.post("/api/images", headers={"Idempotency-Key": "k-4"}, **upload())
    assert again.status_code == 202
    assert again.json()["id"] != first.json()["id"]
    assert (await client.get(again.headers["location"])).status_code == 200


async def test_keys_differ_and_uploads_without_a_key_are_not_deduplicated(client: AsyncTestClient[Any]) -> None:
    ids = set()
    for headers in ({"Idempotency-Key": "a"}, {"Idempotency-Key": '"b"'}, {}, {}):
        response = await client.post("/api/images", headers=headers, **upload())
        assert response.status_code == 202
        ids.add(response.json()["id"])
    assert len(ids) == 4


@pytest.mark.parametrize("key", ["", "with space", "é".encode(), "x" * 256])
async def test_malformed_key_is_400(client: AsyncTestClient[Any], key: str | bytes) -> None:
    response = await client.post("/api/images", headers={"Idempotency-Key": key}, **upload())
    assert response.status_code == 400
    assert "Idempotency-Key" in problem_of(response)["detail"]


@pytest.mark.gateway_settings(api_key="secret-one")
async def test_keys_are_scoped_per_api_key(client: AsyncTestClient[Any]) -> None:
    headers = {"Idempotency-Key": "shared", "Authorization": "Bearer secret-one"}
    first = await client.post("/api/images", headers=headers, **upload())
    again = await client.post("/api/images", headers=headers, **upload())
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]


async def upload_while_the_key_is_taken_over(client: AsyncTestClient[Any], key: str) -> tuple[int, bytes]:
    """POST an upload straight into the ASGI app; between the body's two halves the key's claim goes
    to a newer request, as it does once a claim has gone stale (``STALE_CLAIM_S``)."""
    boundary = b"b0undary"
    body = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + PHOTO + b"\r\n--" + boundary + b"--\r\n")  # fmt: skip
    halves = [body[: len(body) // 2], body[len(body) // 2 :]]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/images", "raw_path": b"/api/images", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"test"), (b"idempotency-key", key.encode()),
                         (b"content-type", b"multipart/form-data; boundary=" + boundary)],
             "client": ("127.0.0.1", 4711), "server": ("test", 80)}  # fmt: skip
    services: GatewayServices = client.app.state.services
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if len(halves) == 1:
            with services.database.engine.begin() as connection:
                connection.execute(text("UPDATE idempotency_keys SET claim_token = 'newer-request'"))
        half = halves.pop(0)
        return {"type": "http.request", "body": half, "more_body": bool(halves)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await client.app(scope, receive, send)  # type: ignore[arg-type]
    return sent[0]["status"], b"".join(message.get("body", b"") for message in sent[1:])


async def test_a_request_whose_claim_was_taken_over_is_409_and_keeps_no_image(
    client: AsyncTestClient[Any], settings: GatewaySettings
) -> None:
    status, body = await upload_while_the_key_is_taken_over(client, "k-stale")
    assert status == 409
    assert b"a newer request took the key" in body
    assert await image_total(client) == 0
    assert not [path for path in settings.data_dir.rglob("*") if path.is_file() and ".sqlite3" not in path.name]


@pytest.fixture(params=BACKENDS)
def shared_database_settings(
    request: pytest.FixtureRequest, make_settings: SettingsFactory, tmp_path: Path
) -> Iterator[GatewaySettings]:
    with database_url_for(request.param, tmp_path) as url:
        yield make_settings(database_url=url, workers=0)


@pytest.fixture
async def two_gateways(
    shared_database_settings: GatewaySettings, fake_inference: FakeInference
) -> AsyncIterator[list[AsyncTestClient[Any]]]:
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(2):
            app = create_app(shared_database_settings, inference_transport=fake_inference.transport)
            clients.append(await stack.enter_async_context(AsyncTestClient(app=app, raise_server_exceptions=False)))
        yield clients


async def test_concurrent_duplicates_on_two_gateways_make_exactly_one_image(
    two_gateways: list[AsyncTestClient[Any]],
) -> None:
    headers = {"Idempotency-Key": "burst"}
    responses = await asyncio.gather(
        *(two_gateways[number % 2].post("/api/images", headers=headers, **upload()) for number in range(12))
    )
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {202, 409}, statuses
    accepted_ids = {response.json()["id"] for response in responses if response.status_code == 202}
    assert len(accepted_ids) == 1, statuses
    for response in responses:
        if response.status_code == 409:
            assert "still in flight" in problem_of(response)["detail"]
    assert await image_total(two_gateways[0]) == 1
    # once answered, every gateway replays the same 202
    replay = await two_gateways[1].post("/api/images", headers=headers, **upload())
    assert replay.status_code == 202
    assert replay.json()["id"] in accepted_ids
