"""The API docs render their operations in headless chromium with every other host blocked (issue 8 §5)."""

from __future__ import annotations

import pytest

from tests.browser.requirements import require_browser

require_browser()

from playwright.sync_api import Page, expect  # noqa: E402

from tests.browser.conftest import Traffic  # noqa: E402


def test_swagger_ui_renders_the_operations_offline(traffic_page: tuple[Page, Traffic]) -> None:
    page, traffic = traffic_page
    page.goto("/docs")
    expect(page.locator(".opblock-summary-path", has_text="/api/images").first).to_be_visible()
    expect(page.get_by_text("Upload an image").first).to_be_visible()
    assert any("/docs/assets/swagger-ui/swagger-ui-bundle.js" in url for url in traffic.local)


def test_redoc_renders_the_operations_offline(traffic_page: tuple[Page, Traffic]) -> None:
    page, traffic = traffic_page
    page.goto("/docs/redoc")
    expect(page.get_by_role("heading", name="Upload an image")).to_be_visible()
    expect(page.get_by_text("Processing statistics").first).to_be_attached()
    assert any("/docs/assets/redoc/redoc.standalone.js" in url for url in traffic.local)


@pytest.mark.parametrize("path", ["/docs", "/docs/redoc"])
def test_docs_favicon_is_served_by_the_gateway(page: Page, path: str) -> None:
    page.goto(path)
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert href == "/docs/assets/favicon.svg"
    assert page.request.get(href).status == 200
