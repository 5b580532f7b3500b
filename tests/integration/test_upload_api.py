"""POST /api/images: exactly the statuses of API.md, nothing stored on refusal, refusals counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from gateway.settings import GatewaySettings
from tests.support import CORPUS_DIR, corpus_rows, make_image_bytes, png_header_only, problem_of

pytestmark = pytest.mark.gateway_settings(workers=0)


def stored_files(settings: GatewaySettings) -> list[Path]:
    return sorted(path for path in settings.data_dir.rglob("*") if path.is_file() and path.suffix != ".sqlite3")


async def rejected_counts(client: AsyncTestClient[Any]) -> dict[str, int]:
    response = await client.get("/api/stats")
    counts: dict[str, int] = response.json()["rejected"]
    return counts


async def test_upload_answers_202_with_location_and_pending_summary(
    client: AsyncTestClient[Any], settings: GatewaySettings
) -> None:
    response = await client.post("/api/images", files={"image": ("cat.jpg", make_image_bytes(), "image/jpeg")})
    assert response.status_code == 202
    body = response.json()
    assert response.headers["location"] == f"/api/images/{body['id']}"
    assert body["status"] == "pending"
    assert body["filename"] == "cat.jpg"
    assert body["caption"] is None
    assert body["created_at"].endswith("Z")
    assert body["links"]["thumbnails"]["small"] == f"/api/images/{body['id']}/thumbnails/small"
    assert [path.name for path in stored_files(settings)] == [f"{body['id']}.jpg"]


@pytest.mark.parametrize("row", list(corpus_rows()), ids=lambda row: row["file"])
async def test_corpus_upload_outcome_matches_manifest(client: AsyncTestClient[Any], row: dict[str, str]) -> None:
    data = (CORPUS_DIR / row["file"]).read_bytes()
    response = await client.post("/api/images", files={"image": (row["upload_filename"], data, "image/jpeg")})
    if row["expected"] == "accept":
        assert response.status_code == 202, response.text
        details = (await client.get(response.headers["location"])).json()
        assert details["metadata"]["format"] == row["format"]
        assert f"{details['metadata']['width']}x{details['metadata']['height']}" == row["stored_wxh"]
        assert details["metadata"]["sha256"] == row["sha256"]
        assert details["metadata"]["size_bytes"] == int(row["size_bytes"])
    else:
        expected_status = {"empty": 400, "unsupported-format": 415, "not-an-image": 415}[row["reason_class"]]
        assert response.status_code == expected_status
        problem_of(response)


@pytest.mark.parametrize(
    ("request_kwargs", "detail"),
    [
        ({"content": b"raw bytes", "headers": {"content-type": "image/jpeg"}}, "multipart/form-data"),
        ({"data": {"image": "text"}}, "multipart/form-data"),
        ({"files": {"photo": ("a.jpg", make_image_bytes(), "image/jpeg")}}, "no field 'image'"),
        ({"files": {"image": ("a.jpg", b"", "image/jpeg")}}, "empty"),
        (
            {"files": [("image", ("a.jpg", make_image_bytes(), "image/jpeg"))] * 2},
            "exactly one file",
        ),
        (
            {"content": b"--xyz\r\nbroken", "headers": {"content-type": "multipart/form-data; boundary=xyz"}},
            "cannot be parsed",
        ),
        ({"content": b"", "headers": {"content-type": "multipart/form-data"}}, "multipart/form-data"),
    ],
    ids=[
        "not-multipart",
        "urlencoded",
        "no-image-field",
        "empty-file",
        "two-image-parts",
        "broken-multipart",
        "no-boundary",
    ],
)
async def test_bad_requests_are_400_and_counted(
    client: AsyncTestClient[Any], settings: GatewaySettings, request_kwargs: dict[str, Any], detail: str
) -> None:
    response = await client.post("/api/images", **request_kwargs)
    assert response.status_code == 400
    assert detail in problem_of(response)["detail"]
    assert stored_files(settings) == []
    assert (await rejected_counts(client))["bad_request"] == 1


@pytest.mark.gateway_settings(max_upload_bytes=50_000)
async def test_body_over_the_upload_limit_is_413(client: AsyncTestClient[Any], settings: GatewaySettings) -> None:
    big = b"\xff\xd8\xff" + bytes(60_000)
    response = await client.post("/api/images", files={"image": ("big.jpg", big, "image/jpeg")})
    assert response.status_code == 413
    problem_of(response)
    assert stored_files(settings) == []
    assert (await rejected_counts(client))["too_large"] == 1


async def test_decompression_bomb_is_413_from_its_header(
    client: AsyncTestClient[Any], settings: GatewaySettings
) -> None:
    response = await client.post(
        "/api/images", files={"image": ("bomb.png", png_header_only(60_000, 60_000), "image/png")}
    )
    assert response.status_code == 413
    assert "without decoding" in problem_of(response)["detail"]
    assert stored_files(settings) == []


def jpeg_header_only(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF0 frame header is rewritten to declare ``width`` x ``height``."""
    data = bytearray(make_image_bytes((16, 16)))
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


async def test_jpeg_decompression_bomb_is_413_from_its_header(
    client: AsyncTestClient[Any], settings: GatewaySettings
) -> None:
    response = await client.post(
        "/api/images", files={"image": ("bomb.jpg", jpeg_header_only(65_000, 65_000), "image/jpeg")}
    )
    assert response.status_code == 413
    assert "without decoding" in problem_of(response)["detail"]
    assert stored_files(settings) == []
    assert (await client.get("/api/stats")).json()["rejected"]["too_large"] == 1


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (
            (CORPUS_DIR / "hopper.gif").read_bytes() if (CORPUS_DIR / "hopper.gif").exists() else b"GIF89a",
            415,
            "unsupported_format",
        ),
        (b"II*\x00" + bytes(100), 415, "unsupported_format"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", 415, "unsupported_format"),
        (b"\xff\xd8\xff<html>hello</html>", 422, "unreadable"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + bytes(17), 422, "unreadable"),
    ],
    ids=["gif", "tiff", "svg", "html-behind-jpeg-magic", "broken-png-header"],
)
async def test_wrong_formats_are_refused_and_counted(
    client: AsyncTestClient[Any], settings: GatewaySettings, data: bytes, status: int, reason: str
) -> None:
    response = await client.post("/api/images", files={"image": ("photo.jpg", data, "image/jpeg")})
    assert response.status_code == status
    problem_of(response)
    assert stored_files(settings) == []
    assert (await rejected_counts(client))[reason] == 1


async def test_png_named_jpg_is_accepted_as_png(client: AsyncTestClient[Any]) -> None:
    response = await client.post(
        "/api/images", files={"image": ("photo.jpg", make_image_bytes(image_format="PNG"), "image/jpeg")}
    )
    assert response.status_code == 202
    details = (await client.get(response.headers["location"])).json()
    assert details["metadata"]["format"] == "PNG"
    original = await client.get(details["links"]["original"])
    assert original.headers["content-type"] == "image/png"


@pytest.mark.parametrize(
    ("client_name", "shown_as"),
    [
        ("../../x.jpg", "x.jpg"),
        ("..\\..\\windows\\x.jpg", "x.jpg"),
        ("/etc/passwd", "passwd"),
        ("vacances à la mer 🌊.jpg", "vacances à la mer 🌊.jpg"),
        ('with spaces and "quotes".jpg', 'with spaces and "quotes".jpg'),
        ("line\nbreak\r.jpg", "linebreak.jpg"),
        ("", "upload"),
    ],
)
async def test_hostile_file_names_are_display_strings_only(
    client: AsyncTestClient[Any], settings: GatewaySettings, client_name: str, shown_as: str
) -> None:
    response = await client.post("/api/images", files={"image": (client_name, make_image_bytes(), "image/jpeg")})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["filename"] == shown_as
    files = stored_files(settings)
    assert [path.name for path in files] == [f"{body['id']}.jpg"]
    assert all(settings.data_dir.resolve() in path.resolve().parents for path in files)
    original = await client.get(body["links"]["original"])
    assert original.status_code == 200
    assert "\n" not in original.headers["content-disposition"]


@pytest.mark.gateway_settings(api_key="s3cret")
async def test_api_key_guards_writes_but_not_reads(client: AsyncTestClient[Any]) -> None:
    files = {"image": ("a.jpg", make_image_bytes(), "image/jpeg")}
    refused = await client.post("/api/images", files=files)
    assert refused.status_code == 401
    problem_of(refused)
    wrong = await client.post("/api/images", files=files, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    accepted = await client.post("/api/images", files=files, headers={"Authorization": "Bearer s3cret"})
    assert accepted.status_code == 202
    image_id = accepted.json()["id"]
    assert (await client.get(f"/api/images/{image_id}")).status_code == 200
    assert (await client.delete(f"/api/images/{image_id}")).status_code == 401
    assert (await client.post(f"/api/images/{image_id}/retry")).status_code == 401
    deleted = await client.delete(f"/api/images/{image_id}", headers={"Authorization": "Bearer s3cret"})
    assert deleted.status_code == 204


async def test_request_id_is_echoed_or_made(client: AsyncTestClient[Any]) -> None:
    echoed = await client.get("/api/images", headers={"X-Request-ID": "my-trace-42"})
    assert echoed.headers["x-request-id"] == "my-trace-42"
    made = await client.get("/api/images/nope")
    assert len(made.headers["x-request-id"]) == 32
    hostile = await client.get("/api/images", headers={"X-Request-ID": "bad id\twith tabs"})
    assert hostile.headers["x-request-id"] != "bad id\twith tabs"


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/nowhere", 404), ("PUT", "/api/images", 405)])
async def test_routing_errors_carry_the_request_id_too(
    client: AsyncTestClient[Any], method: str, path: str, status: int
) -> None:
    response = await client.request(method, path, headers={"X-Request-ID": "trace-routing-1"})
    assert response.status_code == status
    assert response.headers["x-request-id"] == "trace-routing-1"
    problem_of(response)
