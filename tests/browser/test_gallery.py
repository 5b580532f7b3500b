"""The gallery in headless chromium: uploads through the picker, live cards, rejections, detail actions,
keyboard reach, 375 px width, and nothing fetched from another host (the fixtures assert that)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser.requirements import require_browser

require_browser()

from playwright.sync_api import Browser, Page, expect  # noqa: E402

from gateway.web.pages import PAGE_SIZE  # noqa: E402
from tests.browser.conftest import (  # noqa: E402
    API_KEY,
    GalleryServer,
    Traffic,
    gallery_server,
    open_context,
    save_screenshot,
)
from tests.processes import image_details, wait_for_images  # noqa: E402
from tests.support import IMAGES_DIR, REPO_ROOT, png_header_only  # noqa: E402

UPLOAD_INPUT = '[data-testid="upload"] input[type=file][multiple]'
THREE_PHOTOS = [
    IMAGES_DIR / "progressive_nikon_d300.jpeg",
    IMAGES_DIR / "outdoor_rocket_launch.jpg",
    IMAGES_DIR / "person_cameraman_grayscale.png",
]
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
FOCUSED = """() => {
    const element = document.activeElement;
    const card = element.closest('[data-image-id]');
    if (card) return 'card:' + card.dataset.imageId;
    return element.dataset.chooseFiles !== undefined ? 'upload' : element.tagName;
}"""
CARD_HEIGHT = """(imageId) => document.querySelector(`[data-image-id="${imageId}"]`).getBoundingClientRect().height"""
README_SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
SHOWCASE = [
    *THREE_PHOTOS,
    IMAGES_DIR / "animal_cat_chelsea.png",
    IMAGES_DIR / "landscape_waterfall_orient6.jpg",
    IMAGES_DIR / "object_coffee_cup.png",
]


@pytest.fixture(scope="module")
def showcase(server: GalleryServer) -> list[str]:
    """Six different photos, completed: the newest cards of the gallery for its screenshots."""
    ids = [upload_via_api(server, path) for path in SHOWCASE]
    wait_for_images(server.gateway, ids, ("completed",))
    return ids


def upload_via_api(server: GalleryServer, path: Path, data: bytes | None = None) -> str:
    files = {"image": (path.name, data if data is not None else path.read_bytes())}
    response = httpx.post(f"{server.origin}/api/images", files=files, timeout=30)
    assert response.status_code == 202, response.text
    image_id: str = response.json()["id"]
    return image_id


def card_height(page: Page, image_id: str) -> float:
    """The card's height, read in one step: a live update replaces the card element with a fresh one,
    and a locator's bounding_box taken across that swap measures a detached element (None)."""
    height: float = page.evaluate(CARD_HEIGHT, image_id)
    return height


def test_three_uploads_through_the_picker_complete_live_without_layout_shift(
    traffic_page: tuple[Page, Traffic], server: GalleryServer
) -> None:
    page, traffic = traffic_page
    page.goto("/")
    page.set_input_files(UPLOAD_INPUT, [str(path) for path in THREE_PHOTOS])
    items = page.locator('[data-testid="upload-item"]')
    expect(items).to_have_count(3)
    expect(items.locator("progress")).to_have_count(3)
    expect(page.locator('[data-testid="upload-item"].accepted')).to_have_count(3)
    ids = [items.nth(index).get_attribute("data-uploaded-id") or "" for index in range(3)]
    heights = {}
    for image_id in ids:
        expect(page.locator(f'[data-image-id="{image_id}"]')).to_be_visible()
        heights[image_id] = card_height(page, image_id)
    for image_id in ids:
        live = page.locator(f'[data-image-id="{image_id}"]')
        expect(live.locator('[data-testid="status"]')).to_have_text("completed")
        caption = httpx.get(f"{server.origin}/api/images/{image_id}").json()["caption"]["text"]
        expect(live.locator('[data-testid="caption"]')).to_have_text(caption)
        expect(live.locator("img")).to_have_attribute("alt", caption)
        assert card_height(page, image_id) == heights[image_id]
    assert not any(url.endswith("/") and "?" not in url for url in traffic.local[1:]), "the page reloaded"


def test_rejected_gif_shows_the_problem_sentence(page: Page, server: GalleryServer) -> None:
    expected = httpx.post(f"{server.origin}/api/images", files={"image": ("tiny.gif", GIF)}).json()["detail"]
    page.goto("/")
    page.set_input_files(UPLOAD_INPUT, [{"name": "tiny.gif", "mimeType": "image/gif", "buffer": GIF}])
    rejected = page.locator('[data-testid="upload-item"].rejected')
    expect(rejected).to_have_count(1)
    expect(rejected.locator('[data-testid="upload-message"]')).to_have_text(expected)


def test_detail_view_retries_a_failed_image_and_deletes_it(page: Page, server: GalleryServer) -> None:
    image_id = upload_via_api(server, Path("broken.png"), png_header_only(64, 48))
    wait_for_images(server.gateway, [image_id], ("failed",))
    first_failure = image_details(server.gateway, image_id)["completed_at"]
    page.goto("/")
    page.locator(f'[data-image-id="{image_id}"] a').click()
    expect(page).to_have_url(f"{server.origin}/images/{image_id}")
    expect(page.locator('.details [data-testid="status"]')).to_have_text("failed")
    expect(page.locator('[data-testid="error"]')).not_to_be_empty()
    page.get_by_role("button", name="Retry").click()
    expect(page.locator('[data-testid="action-result"]')).to_have_text("Re-queued: the image is pending again.")
    # The retry's 202 has arrived (the message says so), so the server's "failed" is the second run's.
    wait_for_images(server.gateway, [image_id], ("failed",))
    assert image_details(server.gateway, image_id)["completed_at"] > first_failure  # processed a second time
    expect(page.locator('.details [data-testid="status"]')).to_have_text("failed")  # the same bytes fail again
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(f"{server.origin}/")
    expect(page.locator(f'[data-image-id="{image_id}"]')).to_have_count(0)
    assert httpx.get(f"{server.origin}/api/images/{image_id}").status_code == 404


def test_keyboard_alone_reaches_the_upload_button_and_the_cards(page: Page, server: GalleryServer) -> None:
    image_id = upload_via_api(server, THREE_PHOTOS[0])
    page.goto("/")
    expect(page.locator(f'[data-image-id="{image_id}"]')).to_be_visible()
    reached: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(page.evaluate(FOCUSED))
        if f"card:{image_id}" in reached:
            break
    assert "upload" in reached
    assert f"card:{image_id}" in reached, reached
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # focus is visible
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{server.origin}/images/{image_id}")


@pytest.mark.parametrize("width", [375, 1280])
def test_pages_fit_the_width_and_are_saved_as_screenshots(
    browser: Browser, server: GalleryServer, showcase: list[str], artifacts_dir: Path, width: int
) -> None:
    ids = list(reversed(showcase))
    context, traffic = open_context(browser, server.origin, width=width, height=900)
    page = context.new_page()
    try:
        for path, name in (("/", "gallery"), (f"/images/{ids[0]}", "detail")):
            page.goto(path)
            expect(page.locator(f'[data-image-id="{ids[0]}"] [data-testid="status"]')).to_have_text("completed")
            # not "networkidle": the page keeps its event stream open
            page.wait_for_function("() => [...document.images].every((image) => image.complete)")
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} overflows sideways by {overflow} px at {width} px"
            copy_to = README_SCREENSHOTS if name == "gallery" and _writing_readme_screenshots() else None
            save_screenshot(page, artifacts_dir, f"{name}-{width}px", copy_to)
    finally:
        context.close()
    assert traffic.foreign == []


def _writing_readme_screenshots() -> bool:
    return os.environ.get("UPDATE_README_SCREENSHOTS") == "1"


def test_with_an_api_key_the_page_asks_for_it_and_sends_it_as_bearer(
    browser: Browser, keyed_server: GalleryServer
) -> None:
    context, traffic = open_context(browser, keyed_server.origin)
    page = context.new_page()
    try:
        page.goto("/")
        page.set_input_files(UPLOAD_INPUT, [str(THREE_PHOTOS[0])])
        dialog = page.locator("#key-dialog")
        expect(dialog).to_be_visible()
        page.fill("#key-input", API_KEY)
        page.get_by_role("button", name="Use this key").click()
        expect(page.locator('[data-testid="upload-item"].accepted')).to_have_count(1)
        assert page.evaluate("() => sessionStorage.getItem('image-pipeline.api-key')") == API_KEY
        uploads = [
            headers for url, headers in zip(traffic.local, traffic.headers, strict=True) if url.endswith("/api/images")
        ]
        assert uploads and uploads[-1].get("authorization") == f"Bearer {API_KEY}"
    finally:
        context.close()
    assert traffic.foreign == []


@pytest.fixture(scope="module")
def idle_server(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GalleryServer]:
    """No workers: uploads stay pending, so a long grid is quick to make."""
    yield from gallery_server(tmp_path_factory.mktemp("gallery-idle"), GATEWAY_WORKERS="0")


def test_scrolling_to_the_end_loads_the_next_page_in_place(browser: Browser, idle_server: GalleryServer) -> None:
    ids = [
        upload_via_api(idle_server, Path(f"{number}.png"), png_header_only(32, 32)) for number in range(PAGE_SIZE + 5)
    ]
    context, traffic = open_context(browser, idle_server.origin)
    page = context.new_page()
    try:
        page.goto("/")
        cards = page.locator("[data-image-id]")
        expect(cards).to_have_count(PAGE_SIZE)
        page.locator("[data-pager]").scroll_into_view_if_needed()
        expect(cards).to_have_count(len(ids))
        assert [cards.nth(index).get_attribute("data-image-id") for index in range(len(ids))] == ids[::-1]
        expect(page.locator("[data-pager] a")).to_have_count(0)
        assert page.url == f"{idle_server.origin}/"
    finally:
        context.close()
    assert traffic.foreign == []


def test_files_dropped_on_the_upload_area_are_uploaded(page: Page, server: GalleryServer) -> None:
    """A photo and a file that is not one, dropped together: the photo gets a card, the other its sentence."""
    photo = THREE_PHOTOS[2]
    page.goto("/")
    data = page.evaluate_handle(
        """([photoBytes, photoName]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(photoBytes)], photoName, {type: 'image/png'}));
            transfer.items.add(new File(['{"not": "an image"}'], 'notes.json', {type: 'application/json'}));
            return transfer;
        }""",
        [list(photo.read_bytes()), photo.name],
    )
    page.dispatch_event("[data-dropzone]", "drop", {"dataTransfer": data})
    accepted = page.locator('[data-testid="upload-item"].accepted')
    expect(accepted).to_have_count(1)
    image_id = accepted.get_attribute("data-uploaded-id") or ""
    expect(page.locator(f'[data-image-id="{image_id}"] [data-testid="status"]')).to_have_text("completed")
    assert image_details(server.gateway, image_id)["filename"] == photo.name
    rejected = page.locator('[data-testid="upload-item"].rejected [data-testid="upload-message"]')
    expect(rejected).to_have_count(1)
    expect(rejected).to_contain_text("JPEG")


def test_cards_follow_the_event_stream(browser: Browser, idle_server: GalleryServer) -> None:
    """/api/events is answered here by the test (the stream is another module's); polling alone could
    not remove a card whose image still exists, so its removal shows the page listens to the stream."""
    kept, deleted = (upload_via_api(idle_server, Path(f"{name}.png"), png_header_only(32, 32)) for name in "ab")
    stream = (
        "retry: 600000\n\n"
        f'id: 7\nevent: image.deleted\ndata: {{"id": "{deleted}", "status": "deleted", "caption": null, '
        '"error": null, "at": "2026-01-01T00:00:00.000Z"}\n\n'
    )
    context, traffic = open_context(browser, idle_server.origin)
    page = context.new_page()
    try:
        page.route(
            "**/api/events?after=*",
            lambda route: route.fulfill(status=200, content_type="text/event-stream", body=stream),
        )
        page.goto("/")
        expect(page.locator(f'[data-image-id="{deleted}"]')).to_have_count(0)
        expect(page.locator(f'[data-image-id="{kept}"] [data-testid="status"]')).to_have_text("pending")
    finally:
        context.close()
    assert traffic.foreign == []


def test_a_request_to_another_host_would_be_caught(browser: Browser, server: GalleryServer) -> None:
    """The guard every page fixture ends with sees a foreign request even though the page's CSP forbids it."""
    context, traffic = open_context(browser, server.origin)
    page = context.new_page()
    page.goto("/")
    page.evaluate("() => fetch('http://elsewhere.invalid/font.woff2').catch(() => null)")
    page.wait_for_timeout(200)
    context.close()
    assert traffic.foreign == ["http://elsewhere.invalid/font.woff2"]


def test_an_image_uploaded_elsewhere_gets_a_card_live(
    traffic_page: tuple[Page, Traffic], server: GalleryServer
) -> None:
    """The page streams from the newest event it was rendered with, so an upload right after the page
    loaded (by curl, another tab or another gateway) is not missed, and its card completes live."""
    page, traffic = traffic_page
    page.goto("/")
    image_id = upload_via_api(server, THREE_PHOTOS[1])
    card = page.locator(f'[data-image-id="{image_id}"]')
    expect(card.locator('[data-testid="status"]')).to_have_text("completed")
    assert any("/api/events?after=" in url for url in traffic.local)
    assert not any(url.endswith("/") and "?" not in url for url in traffic.local[1:]), "the page reloaded"
