"""Both services' API docs render their operations in headless chromium with every other host blocked
(issue 8 §5)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.requirements import require_browser

require_browser()

from playwright.sync_api import Browser, Page, expect  # noqa: E402

from tests.browser.conftest import Traffic, open_context  # noqa: E402
from tests.conftest import ModelExporter  # noqa: E402
from tests.processes import ServiceProcess, inference_process  # noqa: E402


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


@pytest.fixture(scope="module")
def inference_service(
    browser: Browser, exported_model: ModelExporter, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    service = inference_process(tmp_path_factory.mktemp("inference-docs"), str(exported_model("tiny-random")))
    try:
        service.start(timeout_s=120)
        yield service
    finally:
        service.stop()


@pytest.fixture
def inference_page(browser: Browser, inference_service: ServiceProcess) -> Iterator[tuple[Page, Traffic]]:
    """A page on the inference service's origin; afterwards, nothing left it and no script failed."""
    context, traffic = open_context(browser, inference_service.url)
    page = context.new_page()
    page.on("pageerror", lambda error: traffic.errors.append(str(error)))
    yield page, traffic
    context.close()
    assert traffic.foreign == [], f"requests left the inference service's origin: {traffic.foreign}"
    assert traffic.errors == [], f"script errors: {traffic.errors}"


def test_inference_swagger_ui_renders_its_operations_offline(inference_page: tuple[Page, Traffic]) -> None:
    page, traffic = inference_page
    page.goto("/docs")
    expect(page.locator(".opblock-summary-path", has_text="/caption").first).to_be_visible()
    expect(page.get_by_text("Caption a JPEG or PNG image").first).to_be_visible()
    assert any("/docs/assets/swagger-ui/swagger-ui-bundle.js" in url for url in traffic.local)


def test_inference_redoc_renders_its_operations_offline(inference_page: tuple[Page, Traffic]) -> None:
    page, traffic = inference_page
    page.goto("/docs/redoc")
    expect(page.get_by_role("heading", name="Caption a JPEG or PNG image (raw bytes in the body)")).to_be_visible()
    assert any("/docs/assets/redoc/redoc.standalone.js" in url for url in traffic.local)
