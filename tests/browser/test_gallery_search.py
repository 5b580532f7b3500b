"""Searching captions in the gallery, in headless chromium: the form, a shareable URL, no JavaScript needed,
and a card whose caption arrives while a search page is open appears live."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.requirements import require_browser

require_browser()

from playwright.sync_api import Browser, Page, expect  # noqa: E402

from tests.browser.conftest import EXPECT_TIMEOUT_MS, GalleryServer, gallery_server, open_context  # noqa: E402
from tests.browser.test_gallery import SHOWCASE, upload_via_api  # noqa: E402
from tests.processes import image_details, wait_for_images  # noqa: E402

CARDS = "[data-image-id]"


@pytest.fixture(scope="module")
def search_server(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GalleryServer]:
    yield from gallery_server(tmp_path_factory.mktemp("gallery-search"))


@pytest.fixture(scope="module")
def captioned(search_server: GalleryServer) -> dict[str, str]:
    """Three different photos, completed: their captions ("a served caption number N") by id."""
    ids = [upload_via_api(search_server, path) for path in SHOWCASE[:3]]
    wait_for_images(search_server.gateway, ids, ("completed",))
    return {image_id: image_details(search_server.gateway, image_id)["caption"]["text"] for image_id in ids}


def card_ids(page: Page) -> list[str]:
    return [card.get_attribute("data-image-id") or "" for card in page.locator(CARDS).all()]


def search_for(page: Page, words: str) -> None:
    form = page.locator('[data-testid="search"]')
    form.locator('input[name="q"]').fill(words)
    form.locator('input[name="q"]').press("Enter")


def test_typing_words_and_submitting_shows_exactly_the_matching_cards(
    browser: Browser, search_server: GalleryServer, captioned: dict[str, str]
) -> None:
    wanted = next(image_id for image_id, caption in captioned.items() if caption.endswith(" 2"))
    context, traffic = open_context(browser, search_server.origin)
    page = context.new_page()
    try:
        page.goto("/")
        expect(page.locator(CARDS)).to_have_count(3)
        search_for(page, "Captions 2")
        page.wait_for_url("**/?q=Captions+2")
        expect(page.locator(CARDS)).to_have_count(1)
        assert card_ids(page) == [wanted]
        page.reload()  # the URL is the search: it can be shared and reloaded
        expect(page.locator(CARDS)).to_have_count(1)
        expect(page.locator('[data-testid="search"] input[name="q"]')).to_have_value("Captions 2")
        search_for(page, "served caption")
        expect(page.locator(CARDS)).to_have_count(3)
        search_for(page, "zebra")
        expect(page.locator(CARDS)).to_have_count(0)
        expect(page.locator("[data-empty]")).to_contain_text("zebra")
    finally:
        context.close()
    assert traffic.foreign == []


def test_search_works_without_javascript(
    browser: Browser, search_server: GalleryServer, captioned: dict[str, str]
) -> None:
    wanted = next(image_id for image_id, caption in captioned.items() if caption.endswith(" 3"))
    context = browser.new_context(base_url=search_server.origin, java_script_enabled=False)
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto("/")
        search_for(page, "number 3")
        page.wait_for_url("**/?q=number+3")
        assert card_ids(page) == [wanted]
    finally:
        context.close()


def test_a_card_whose_caption_arrives_and_matches_appears_live(
    browser: Browser, search_server: GalleryServer, captioned: dict[str, str]
) -> None:
    """The fake inference service numbers its captions, so the next caption's number is known: a page
    searching for it is open before the image is uploaded, and gets its card when the caption comes."""
    next_number = search_server.inference.captions_served + 1
    context, traffic = open_context(browser, search_server.origin)
    page = context.new_page()
    try:
        page.goto(f"/?q=number+{next_number}")
        expect(page.locator(CARDS)).to_have_count(0)
        image_id = upload_via_api(search_server, SHOWCASE[3])
        card = page.locator(f'[data-image-id="{image_id}"]')
        expect(card.locator('[data-testid="status"]')).to_have_text("completed")
        expect(card.locator('[data-testid="caption"]')).to_have_text(f"a served caption number {next_number}")
        other = upload_via_api(search_server, SHOWCASE[4])  # caption number next_number + 1: not a match
        wait_for_images(search_server.gateway, [other], ("completed",))
        page.reload()
        assert card_ids(page) == [image_id]
    finally:
        context.close()
    assert traffic.foreign == []
