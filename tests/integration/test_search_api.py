"""``GET /api/images?q=`` over HTTP on SQLite and PostgreSQL: plain words, never a 5xx, the list's paging and shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from gateway.app import create_app
from tests.conftest import SettingsFactory, wait_for_status
from tests.repository_backends import BACKENDS, database_url_for
from tests.support import FakeInference, caption_body, make_image_bytes

CAPTIONS = ("a dog on the beach", "two dogs running on a beach", "a cat on a sofa", "a café in Zürich")


@pytest.fixture(params=BACKENDS)
async def searchable(
    request: pytest.FixtureRequest, make_settings: SettingsFactory, fake_inference: FakeInference, tmp_path: Path
) -> AsyncIterator[tuple[AsyncTestClient[Any], dict[str, str]]]:
    """A gateway on each database with four images captioned as in CAPTIONS; the ids by caption."""
    with database_url_for(request.param, tmp_path) as url:
        app = create_app(make_settings(database_url=url), inference_transport=fake_inference.transport)
        async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
            ids = {}
            for number, caption in enumerate(CAPTIONS):
                fake_inference.scripted.append(httpx.Response(200, json=caption_body(caption)))
                data = make_image_bytes((20 + number, 20))
                response = await client.post("/api/images", files={"image": ("a.jpg", data, "image/jpeg")})
                ids[caption] = response.json()["id"]
                assert (await wait_for_status(client, ids[caption]))["caption"]["text"] == caption
            yield client, ids


async def found(client: AsyncTestClient[Any], **params: Any) -> list[str]:
    response = await client.get("/api/images", params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_q_finds_every_word_newest_first_with_the_list_summary(
    searchable: tuple[AsyncTestClient[Any], dict[str, str]],
) -> None:
    client, ids = searchable
    response = await client.get("/api/images", params={"q": "Dogs BEACH"})
    body = response.json()
    assert [item["id"] for item in body["items"]] == [ids["two dogs running on a beach"], ids["a dog on the beach"]]
    assert body["next_cursor"] is None
    plain = (await client.get("/api/images")).json()["items"]
    assert body["items"][0] == next(item for item in plain if item["id"] == body["items"][0]["id"])
    assert await found(client, q="cafe zurich") == [ids["a café in Zürich"]]


async def test_q_pages_with_the_cursor_and_combines_with_status(
    searchable: tuple[AsyncTestClient[Any], dict[str, str]],
) -> None:
    client, ids = searchable
    first = (await client.get("/api/images", params={"q": "on", "limit": 2})).json()
    second = (await client.get("/api/images", params={"q": "on", "limit": 2, "cursor": first["next_cursor"]})).json()
    on = [ids[caption] for caption in reversed(CAPTIONS) if " on " in caption]
    assert [item["id"] for item in first["items"] + second["items"]] == on
    assert second["next_cursor"] is None
    assert await found(client, q="dog", status="completed") == await found(client, q="dog")
    assert await found(client, q="dog", status="failed") == []


@pytest.mark.parametrize("q", ["", "   ", "\t"])
async def test_a_blank_q_is_the_plain_list(searchable: tuple[AsyncTestClient[Any], dict[str, str]], q: str) -> None:
    client, _ids = searchable
    assert await found(client, q=q) == await found(client)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ('"dog', ("a dog on the beach", "two dogs running on a beach")),
        ("dog*", ("a dog on the beach", "two dogs running on a beach")),
        ("-dog +beach", ("a dog on the beach", "two dogs running on a beach")),
        ("beach:dog", ("a dog on the beach", "two dogs running on a beach")),
        ("NEAR(dog beach)", ()),
        ("dog AND cat", ()),
        ("dog OR cat", ()),
        ("sofa'; DROP TABLE images; --", ()),
        ("sofa\x00cat", ("a cat on a sofa",)),
        ("%", ()),
        ("***", ()),
        ("\U0002ee2f", ()),  # unassigned in this Python's Unicode tables: no word
        ("x" * 10_000, None),
        ("dog " * 50 + "x", None),
    ],
)
async def test_nasty_queries_are_plain_words_or_a_400_problem(
    searchable: tuple[AsyncTestClient[Any], dict[str, str]], q: str, expected: tuple[str, ...] | None
) -> None:
    client, ids = searchable
    response = await client.get("/api/images", params={"q": q})
    if expected is None:
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "q " in response.json()["detail"]
    else:
        assert response.status_code == 200, response.text
        newest_first = [ids[caption] for caption in reversed(CAPTIONS) if caption in expected]
        assert [item["id"] for item in response.json()["items"]] == newest_first
    assert len(await found(client)) == len(CAPTIONS)  # the table is still there
