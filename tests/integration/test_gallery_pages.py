"""The gallery's server-rendered pages: browsing works without JavaScript, fragments match the API."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from gateway.web.formatting import show_bytes, show_ms, show_rate
from gateway.web.pages import PAGE_SIZE
from tests.conftest import wait_for_status
from tests.support import FakeInference, caption_body, make_image_bytes, png_header_only, upload

CARD_IDS = re.compile(r'data-image-id="([0-9a-f]{32})"')


def next_link(html: str) -> str | None:
    match = re.search(r'<a class="button" href="([^"]+)" data-fragment="([^"]+)">Next page</a>', html)
    return unescape(match.group(1)) if match else None


async def test_gallery_page_shows_cards_newest_first_with_caption_as_alt_and_status(
    client: AsyncTestClient[Any],
) -> None:
    first, second = await upload(client, name="first.jpg"), await upload(client, name="second.jpg")
    body = await wait_for_status(client, second)
    await wait_for_status(client, first)
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert CARD_IDS.findall(html) == [second, first]
    caption = body["caption"]["text"]
    assert f'alt="{caption}"' in html
    assert f'<span class="caption" data-testid="caption">{caption}</span>' in html
    assert '<span class="status status-completed" data-testid="status">completed</span>' in html
    assert re.search(r'data-testid="upload".*<input[^>]*type="file"[^>]*multiple', html, re.S)
    assert 'data-testid="stats"' in html


async def test_gallery_page_references_no_other_host(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/")
    assert response.headers["content-security-policy"].startswith("default-src 'self';")
    html = response.text
    references = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert references
    assert all(reference.startswith(("/", "#")) for reference in references), references
    for reference in ("/ui/static/gallery.js", "/ui/static/gallery.css", "/ui/static/favicon.svg"):
        assert (await client.get(reference)).status_code == 200


async def test_status_filter_links_and_next_page_link_page_through_without_javascript(
    client: AsyncTestClient[Any],
) -> None:
    ids = [await upload(client, name=f"{number}.jpg") for number in range(PAGE_SIZE + 2)]
    for image_id in ids:
        await wait_for_status(client, image_id)
    failed = await upload(client, png_header_only(64, 64), name="broken.png")
    await wait_for_status(client, failed)
    first_page = (await client.get("/?status=completed")).text
    assert 'href="/?status=failed"' in first_page
    assert 'aria-current="page">Completed' in first_page
    link = next_link(first_page)
    assert link is not None and link.startswith("/?status=completed&cursor=")
    second_page = (await client.get(link)).text
    shown = CARD_IDS.findall(first_page) + CARD_IDS.findall(second_page)
    assert shown == list(reversed(ids))
    assert next_link(second_page) is None
    assert CARD_IDS.findall((await client.get("/?status=failed")).text) == [failed]


async def test_cards_fragment_is_the_next_page_of_cards(client: AsyncTestClient[Any]) -> None:
    ids = [await upload(client, name=f"{number}.jpg") for number in range(PAGE_SIZE + 1)]
    first_page = (await client.get("/")).text
    fragment_url = unescape(re.search(r'data-fragment="(/ui/cards\?[^"]+)"', first_page).group(1))  # type: ignore[union-attr]
    fragment = await client.get(fragment_url)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert CARD_IDS.findall(fragment.text) == [ids[0]]


async def test_card_and_details_fragments_follow_the_image(client: AsyncTestClient[Any]) -> None:
    image_id = await upload(client)
    body = await wait_for_status(client, image_id)
    card = (await client.get(f"/ui/cards/{image_id}")).text
    assert card.lstrip().startswith(f'<article class="card" data-image-id="{image_id}" data-status="completed"')
    details = (await client.get(f"/ui/details/{image_id}")).text
    assert body["metadata"]["sha256"] in details
    assert body["links"]["thumbnails"]["medium"] in details
    await client.delete(f"/api/images/{image_id}")
    assert (await client.get(f"/ui/cards/{image_id}")).status_code == 404


async def test_detail_page_shows_metadata_timings_caption_and_actions(client: AsyncTestClient[Any]) -> None:
    image_id = await upload(client, name="cup.jpg")
    body = await wait_for_status(client, image_id)
    html = (await client.get(f"/images/{image_id}")).text
    metadata = body["metadata"]
    for text in (
        f"{metadata['width']} \N{MULTIPLICATION SIGN} {metadata['height']} px",
        metadata["sha256"],
        body["caption"]["text"],
        "Caption completed · fake-blip (int8)",  # what made it
        f'href="/api/images/{image_id}/original"',
        'data-action="retry"',
        'data-action="delete"',
        "Stage timings",
        show_ms(body["stages_ms"]["decode"]),
    ):
        assert text in html, text
    assert re.search(r'data-action="retry"[^>]*disabled', html)  # only a failed image can be retried


async def test_stats_fragment_says_whether_inference_is_ready(client: AsyncTestClient[Any]) -> None:
    html = (await client.get("/ui/stats")).text
    assert 'data-testid="stats"' in html
    assert "Inference ready" in html or "Inference not ready" in html
    assert "Stage averages" in html


@pytest.mark.parametrize(
    ("path", "status", "sentence"),
    [
        ("/images/0123456789abcdef0123456789abcdef", 404, "No image with id"),
        ("/images/not-an-id", 404, "is not an image id"),
        ("/?status=finished", 400, "Unknown status"),
        ("/?cursor=%%%", 400, "The cursor is malformed"),
    ],
)
async def test_page_errors_are_html_pages_with_the_problem_sentence(
    client: AsyncTestClient[Any], path: str, status: int, sentence: str
) -> None:
    response = await client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert sentence in response.text


async def test_html_routes_are_not_in_the_openapi_schema(client: AsyncTestClient[Any]) -> None:
    paths = (await client.get("/docs/openapi.json")).json()["paths"]
    assert not [path for path in paths if path == "/" or path.startswith(("/ui", "/images"))]


@pytest.mark.parametrize(
    ("value", "shown"), [(None, "\N{EN DASH}"), (3.14159, "3.1 ms"), (250.4, "250 ms"), (12_345.0, "12.3 s")]
)
def test_milliseconds_are_shown_with_a_unit(value: float | None, shown: str) -> None:
    assert show_ms(value) == shown


def test_rates_and_sizes_are_shown_with_units() -> None:
    assert (show_rate(None), show_rate(0.9091)) == ("\N{EN DASH}", "90.9 %")
    assert (show_bytes(512), show_bytes(2048), show_bytes(3 * 1024 * 1024)) == ("512 B", "2.0 KiB", "3.0 MiB")


async def test_search_form_and_shared_search_url_show_only_matching_cards_without_javascript(
    client: AsyncTestClient[Any], fake_inference: FakeInference
) -> None:
    ids = {}
    for number, caption in enumerate(("a red car in the rain", "a red kite", "two red cars")):
        fake_inference.scripted.append(httpx.Response(200, json=caption_body(caption)))
        ids[caption] = await upload(client, make_image_bytes((10 + number, 10)))
        await wait_for_status(client, ids[caption])
    home = (await client.get("/")).text
    form = re.search(
        r'<form class="search" method="get" action="/" role="search" data-testid="search">(.*?)</form>', home, re.S
    )
    assert form is not None and 'name="q"' in form.group(1)
    response = await client.get("/", params={"q": "Red CARS"})
    assert response.status_code == 200
    assert CARD_IDS.findall(response.text) == [ids["two red cars"], ids["a red car in the rain"]]
    assert 'value="Red CARS"' in response.text
    assert "/?q=Red+CARS&amp;status=completed" in response.text  # the filters keep the search
    fragment = await client.get("/ui/cards", params={"q": "kite"})
    assert CARD_IDS.findall(fragment.text) == [ids["a red kite"]]
    nothing = await client.get("/", params={"q": "zebra"})
    assert CARD_IDS.findall(nothing.text) == []
    assert "No images whose caption holds “zebra”" in nothing.text


async def test_search_pages_on_with_the_next_page_link(
    client: AsyncTestClient[Any], fake_inference: FakeInference
) -> None:
    ids = []
    for number in range(PAGE_SIZE + 2):
        fake_inference.scripted.append(httpx.Response(200, json=caption_body(f"a boat number {number}")))
        ids.append(await upload(client, make_image_bytes((8 + number, 8))))
    for image_id in ids:
        await wait_for_status(client, image_id)
    html = (await client.get("/", params={"q": "boat"})).text
    link = next_link(html)
    assert link is not None and "q=boat" in link
    rest = (await client.get(link)).text
    assert CARD_IDS.findall(html) + CARD_IDS.findall(rest) == ids[::-1]


async def test_a_card_fragment_with_q_is_found_only_when_its_caption_holds_every_word(
    client: AsyncTestClient[Any], fake_inference: FakeInference
) -> None:
    fake_inference.scripted.append(httpx.Response(200, json=caption_body("a yellow taxi")))
    image_id = await upload(client)
    await wait_for_status(client, image_id)
    assert (await client.get(f"/ui/cards/{image_id}", params={"q": "taxis"})).status_code == 200
    assert (await client.get(f"/ui/cards/{image_id}", params={"q": "yellow bus"})).status_code == 404


async def test_a_search_that_cannot_run_is_an_html_page_with_the_sentence(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/", params={"q": "x" * 201})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert 'data-testid="search"' in response.text
