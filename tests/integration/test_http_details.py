"""HTTP details: HEAD wherever GET works, Allow on 405, long file names, empty cursor, honest header schemas."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from gateway.intake.uploads import display_filename
from tests.conftest import wait_for_status
from tests.support import make_image_bytes, problem_of, upload

CJK_NAME = "写真" * 750 + ".jpg"  # 1,500 CJK characters, 4,500 bytes of UTF-8
HEADERS_THAT_MUST_MATCH = ("content-type", "content-length", "etag", "x-caption", "cache-control", "vary",
                           "content-disposition", "last-modified", "location")  # fmt: skip


async def test_head_answers_like_get_without_a_body_for_every_read(client: AsyncTestClient[Any]) -> None:
    image_id = await upload(client)
    await wait_for_status(client, image_id)
    paths = [f"/api/images/{image_id}", f"/api/images/{image_id}/original", "/api/images", "/api/stats",
             f"/api/images/{image_id}/thumbnails/small", f"/api/images/{image_id}/thumbnails/medium",
             "/health/live", "/health/ready", "/docs/openapi.json"]  # fmt: skip
    for path in paths:
        got, head = await client.get(path), await client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"", path
        for name in HEADERS_THAT_MUST_MATCH:
            assert head.headers.get(name) == got.headers.get(name), (path, name)
    assert int((await client.head(f"/api/images/{image_id}/original")).headers["content-length"]) > 0


async def test_head_of_an_unknown_image_is_a_bodyless_404(client: AsyncTestClient[Any]) -> None:
    response = await client.head("/api/images/" + "0" * 32 + "/thumbnails/small")
    assert response.status_code == 404
    assert response.content == b""


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/images", "GET, HEAD, OPTIONS, POST"),
        ("DELETE", "/api/stats", "GET, HEAD, OPTIONS"),
        ("GET", "/api/images/" + "0" * 32 + "/retry", "OPTIONS, POST"),
        ("HEAD", "/api/images/" + "0" * 32 + "/retry", "OPTIONS, POST"),
        ("PATCH", "/api/images/" + "0" * 32, "DELETE, GET, HEAD, OPTIONS"),
    ],
)
@pytest.mark.gateway_settings(workers=0)
async def test_405_names_the_allowed_methods(
    client: AsyncTestClient[Any], method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    if method != "HEAD":
        assert problem_of(response)["detail"] == f"{method} is not allowed here; allowed: {allowed}."


@pytest.mark.gateway_settings(workers=0)
async def test_a_1500_character_cjk_file_name_is_accepted_and_shortened(client: AsyncTestClient[Any]) -> None:
    image_id = await upload(client, name=CJK_NAME)
    filename: str = (await client.get(f"/api/images/{image_id}")).json()["filename"]
    assert len(filename) == 255
    assert filename.startswith("写真写真")
    assert filename.endswith("….jpg")


@pytest.mark.gateway_settings(workers=0)
async def test_a_part_header_beyond_the_limit_is_a_clear_400(client: AsyncTestClient[Any]) -> None:
    response = await client.post("/api/images", files={"image": ("x" * 40_000, make_image_bytes(), "image/jpeg")})
    assert response.status_code == 400
    assert "32 KiB of headers" in problem_of(response)["detail"]


@pytest.mark.gateway_settings(workers=0)
async def test_an_empty_cursor_is_the_first_page(client: AsyncTestClient[Any]) -> None:
    image_id = await upload(client)
    response = await client.get("/api/images", params={"cursor": ""})
    assert response.status_code == 200
    assert [item["id"] for item in response.json()["items"]] == [image_id]


@pytest.mark.gateway_settings(workers=0)
async def test_original_headers_are_declared_as_sent(client: AsyncTestClient[Any]) -> None:
    schema = (await client.get("/docs/openapi.json")).json()
    declared = schema["paths"]["/api/images/{image_id}/original"]["get"]["responses"]["200"]["headers"]
    assert "format" not in declared["Last-Modified"]["schema"]
    original = await client.get(f"/api/images/{await upload(client)}/original")
    assert original.headers["last-modified"].endswith(" GMT")


@pytest.mark.gateway_settings(workers=0)
async def test_the_upload_operation_documents_the_idempotency_key(client: AsyncTestClient[Any]) -> None:
    schema = (await client.get("/docs/openapi.json")).json()
    operation = schema["paths"]["/api/images"]["post"]
    assert [parameter["name"] for parameter in operation["parameters"]] == ["Idempotency-Key"]
    assert {"408", "409", "422"} <= set(operation["responses"])


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a" * 300, "a" * 254 + "…"),
        ("b" * 300 + ".jpeg", "b" * 249 + "….jpeg"),
        ("c" * 300 + ".not-an-extension", ("c" * 300 + ".not-an-extension")[:254] + "…"),
        ("C:\\Users\\me\\photo.jpg", "photo.jpg"),
        ("", "upload"),
    ],
)
def test_display_filename_keeps_the_start_and_the_extension(raw: str, shown: str) -> None:
    assert display_filename(raw) == shown
    assert len(display_filename(raw)) <= 255


async def upload_raw(client: AsyncTestClient[Any], then: dict[str, Any] | None) -> tuple[int, dict[str, str], bytes]:
    """POST the start of an upload straight into the ASGI app; ``then`` is the next message (None: stall)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/images", "raw_path": b"/api/images", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"test"), (b"content-type", b"multipart/form-data; boundary=b")],
             "client": ("127.0.0.1", 4711), "server": ("test", 80)}  # fmt: skip
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "more_body": True,
         "body": b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n\xff\xd8'},
    ]  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        if then is None:
            await asyncio.sleep(30)
        return then or {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await client.app(scope, receive, send)  # type: ignore[arg-type]
    headers = {name.decode(): value.decode() for name, value in sent[0]["headers"]}
    return sent[0]["status"], headers, b"".join(message.get("body", b"") for message in sent[1:])


@pytest.mark.gateway_settings(workers=0, body_idle_timeout_s=0.3)
async def test_a_stalled_body_is_408_and_not_a_rejection(client: AsyncTestClient[Any]) -> None:
    before = (await client.get("/api/stats")).json()["rejected"]
    status, headers, body = await upload_raw(client, then=None)
    assert status == 408
    assert headers["connection"] == "close"
    assert b"sent nothing for 0.3 s" in body
    assert (await client.get("/api/stats")).json()["rejected"] == before


@pytest.mark.gateway_settings(workers=0)
async def test_a_client_disconnecting_mid_body_is_not_a_rejection(client: AsyncTestClient[Any]) -> None:
    before = (await client.get("/api/stats")).json()["rejected"]
    status, _headers, body = await upload_raw(client, then={"type": "http.disconnect"})
    assert status == 400
    assert b"disconnected" in body
    assert (await client.get("/api/stats")).json()["rejected"] == before


@pytest.mark.parametrize(
    ("path", "allowed"),
    [("/api/images", "GET, HEAD, OPTIONS, POST"), ("/api/images/" + "0" * 32, "DELETE, GET, HEAD, OPTIONS")],
)
@pytest.mark.gateway_settings(workers=0)
async def test_options_lists_every_method_of_the_path(client: AsyncTestClient[Any], path: str, allowed: str) -> None:
    response = await client.options(path)
    assert response.status_code == 204
    assert response.headers["allow"] == allowed


@pytest.mark.gateway_settings(workers=0)
async def test_options_on_an_unknown_path_is_404(client: AsyncTestClient[Any]) -> None:
    assert (await client.options("/nowhere")).status_code == 404


@pytest.mark.gateway_settings(workers=0)
async def test_the_event_stream_declares_the_resume_points_it_takes(client: AsyncTestClient[Any]) -> None:
    """Schemathesis (ST202) sent `Last-Event-ID: null` (the schema said nullable) and `?after=-43582` (the schema
    had lost its minimum 0): both schema-valid, both 400. A header is a string or absent; `after` is 0 or more."""
    schema = (await client.get("/docs/openapi.json")).json()
    parameters = {parameter["name"]: parameter for parameter in schema["paths"]["/api/events"]["get"]["parameters"]}
    header = parameters["Last-Event-ID"]["schema"]
    assert header["type"] == "string"
    assert "oneOf" not in header
    assert re.fullmatch(header["pattern"], "null") is None
    assert parameters["after"]["schema"]["minimum"] == 0
    assert {"type": "null"} in parameters["after"]["schema"]["oneOf"]  # `after=null` is read as no value
    for request in [{"headers": {"Last-Event-ID": "null"}}, {"params": {"after": -1}}]:
        response = await client.get("/api/events", **request)
        assert response.status_code == 400
        problem_of(response)
