"""Idempotency-Key on POST /api/images: one image per key and file, across gateways on one database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
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


async def upload_in_two_halves(
    client: AsyncTestClient[Any], key: str, between: Callable[[], Awaitable[None]]
) -> tuple[int, bytes]:
    """POST an upload straight into the ASGI app, awaiting ``between`` after the first half of the body."""
    boundary = b"b0undary"
    body = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + PHOTO + b"\r\n--" + boundary + b"--\r\n")  # fmt: skip
    halves = [body[: len(body) // 2], body[len(body) // 2 :]]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/images", "raw_path": b"/api/images", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"test"), (b"idempotency-key", key.encode()),
                         (b"content-type", b"multipart/form-data; boundary=" + boundary)],
             "client": ("127.0.0.1", 4711), "server": ("test", 80)}  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if len(halves) == 1:
            await between()
        half = halves.pop(0)
        return {"type": "http.request", "body": half, "more_body": bool(halves)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await client.app(scope, receive, send)  # type: ignore[arg-type]
    return sent[0]["status"], b"".join(message.get("body", b"") for message in sent[1:])


async def test_a_repeat_while_the_first_request_is_in_flight_is_409(client: AsyncTestClient[Any]) -> None:
    repeats: list[int] = []

    async def repeat() -> None:
        response = await client.post("/api/images", headers={"Idempotency-Key": "k-busy"}, **upload())
        assert "still in flight" in problem_of(response)["detail"]
        repeats.append(response.status_code)

    status, _body = await upload_in_two_halves(client, "k-busy", repeat)
    assert (repeats, status) == ([409], 202)
    assert await image_total(client) == 1


async def test_a_request_whose_claim_was_taken_over_is_409_and_keeps_no_image(
    client: AsyncTestClient[Any], settings: GatewaySettings
) -> None:
    services: GatewayServices = client.app.state.services

    async def newer_request_takes_the_stale_claim() -> None:  # as one may once STALE_CLAIM_S has passed
        with services.database.engine.begin() as connection:
            connection.execute(text("UPDATE idempotency_keys SET claim_token = 'newer-request'"))

    status, body = await upload_in_two_halves(client, "k-stale", newer_request_takes_the_stale_claim)
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


async def test_keys_are_scoped_per_api_key(
    shared_database_settings: GatewaySettings, fake_inference: FakeInference
) -> None:
    """The same key and bytes under another API key (a gateway reconfigured on the same database) is a new upload."""
    ids = []
    for api_key in ("secret-one", "secret-two"):
        settings = shared_database_settings.model_copy(update={"api_key": api_key})
        app = create_app(settings, inference_transport=fake_inference.transport)
        async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
            headers = {"Idempotency-Key": "shared", "Authorization": f"Bearer {api_key}"}
            first = await client.post("/api/images", headers=headers, **upload())
            again = await client.post("/api/images", headers=headers, **upload())
            assert first.status_code == again.status_code == 202
            assert again.json()["id"] == first.json()["id"]
            ids.append(first.json()["id"])
    assert ids[0] != ids[1]
