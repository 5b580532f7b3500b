"""Both services' API docs render their operations in headless chromium with every other host blocked
(issue 8 §5)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.browser.requirements import require_browser

require_browser()

from playwright.sync_api import Browser, Page, expect  # noqa: E402

from tests.browser.conftest import GalleryServer, Traffic, watched_page  # noqa: E402
from tests.conftest import ModelExporter  # noqa: E402
from tests.processes import ServiceProcess, inference_process  # noqa: E402


@dataclass(frozen=True)
class DocsSite:
    """A service whose docs are checked: where it answers, and the summary of one of its operations."""

    origin: str
    operation_path: str
    operation_summary: str


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


@pytest.fixture(params=["gateway", "inference"])
def docs_site(request: pytest.FixtureRequest) -> DocsSite:
    if request.param == "gateway":
        gateway: GalleryServer = request.getfixturevalue("server")
        return DocsSite(gateway.origin, "/api/images", "Upload an image")
    inference: ServiceProcess = request.getfixturevalue("inference_service")
    return DocsSite(inference.url, "/caption", "Caption a JPEG or PNG image (raw bytes in the body)")


@pytest.fixture
def docs_page(browser: Browser, docs_site: DocsSite) -> Iterator[tuple[Page, Traffic]]:
    """With the docs' CSP in force, as users get them: the Redoc bundle (vendored byte for byte) asks for
    its sidebar logo on cdn.redoc.ly, which the page's ``img-src 'self'`` blocks before any request."""
    yield from watched_page(browser, docs_site.origin, bypass_csp=False)


@pytest.fixture
def gateway_docs_page(browser: Browser, server: GalleryServer) -> Iterator[Page]:
    for page, _traffic in watched_page(browser, server.origin, bypass_csp=False):
        yield page


def test_swagger_ui_renders_the_operations_offline(docs_page: tuple[Page, Traffic], docs_site: DocsSite) -> None:
    page, traffic = docs_page
    page.goto("/docs")
    expect(page.locator(".opblock-summary-path", has_text=docs_site.operation_path).first).to_be_visible()
    expect(page.get_by_text(docs_site.operation_summary).first).to_be_visible()
    assert any("/docs/assets/swagger-ui/swagger-ui-bundle.js" in url for url in traffic.local)


def test_redoc_renders_the_operations_offline(docs_page: tuple[Page, Traffic], docs_site: DocsSite) -> None:
    page, traffic = docs_page
    page.goto("/docs/redoc")
    expect(page.get_by_role("heading", name=docs_site.operation_summary)).to_be_visible()
    assert any("/docs/assets/redoc/redoc.standalone.js" in url for url in traffic.local)


def test_gateway_redoc_lists_every_operation_group(gateway_docs_page: Page) -> None:
    gateway_docs_page.goto("/docs/redoc")
    expect(gateway_docs_page.get_by_text("Processing statistics").first).to_be_attached()


@pytest.mark.parametrize("path", ["/docs", "/docs/redoc"])
def test_docs_favicon_is_served_by_the_gateway(gateway_docs_page: Page, path: str) -> None:
    gateway_docs_page.goto(path)
    href = gateway_docs_page.locator("link[rel=icon]").get_attribute("href")
    assert href == "/docs/assets/favicon.svg"
    assert gateway_docs_page.request.get(href).status == 200
