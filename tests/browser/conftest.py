"""Headless Debian chromium driven by Playwright against a real gateway process; every other host blocked.

Playwright's own browser download cannot work here, so the tests launch ``/usr/bin/chromium``.
Without it (or without the playwright package) they skip with a message, and fail when CI is set.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.requirements import CHROMIUM, require_browser
from tests.fake_inference_server import FakeInferenceServer
from tests.processes import ServiceProcess, gateway_process

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Route

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
CAPTION_DELAY_S = 1.0  # long enough to see cards pending before they complete
EXPECT_TIMEOUT_MS = 60_000
API_KEY = "browser-test-key"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module: Playwright's sync API keeps an event loop running while it is open, which the
    asyncio tests of other modules must not see."""
    require_browser()
    from playwright.sync_api import expect, sync_playwright  # optional: imported once the check above passed

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)  # generous: the machine may be loaded

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Screenshots land here (``BROWSER_ARTIFACTS_DIR`` when set, e.g. for CI to upload)."""
    chosen = os.environ.get("BROWSER_ARTIFACTS_DIR")
    directory = Path(chosen) if chosen else tmp_path_factory.getbasetemp() / "browser-artifacts"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass
class GalleryServer:
    gateway: ServiceProcess
    inference: FakeInferenceServer

    @property
    def origin(self) -> str:
        return self.gateway.url


def gallery_server(tmp_path: Path, **settings: str) -> Iterator[GalleryServer]:
    with FakeInferenceServer(delay_s=CAPTION_DELAY_S) as inference:
        gateway = gateway_process(tmp_path, inference.url, **settings)
        try:
            gateway.start()
            yield GalleryServer(gateway, inference)
        finally:
            gateway.stop()


@pytest.fixture(scope="module")
def server(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GalleryServer]:
    yield from gallery_server(tmp_path_factory.mktemp("gallery"))


@pytest.fixture(scope="module")
def keyed_server(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GalleryServer]:
    yield from gallery_server(tmp_path_factory.mktemp("gallery-keyed"), GATEWAY_API_KEY=API_KEY)


@dataclass
class Traffic:
    """What the page asked for: requests to the gateway, requests elsewhere (aborted), script errors."""

    origin: str
    local: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def route(self, route: Route) -> None:
        url = route.request.url
        if url == self.origin or url.startswith(self.origin + "/"):
            self.local.append(url)
            self.headers.append(route.request.headers)
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()


def open_context(
    browser: Browser, origin: str, width: int = 1280, height: int = 900, *, bypass_csp: bool = True
) -> tuple[BrowserContext, Traffic]:
    """By default the page's own Content-Security-Policy is bypassed: it would block a foreign load before
    routing sees it, and the test is that our pages ask for nothing foreign at all (the CSP header is
    tested on its own)."""
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=origin, bypass_csp=bypass_csp)
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    traffic = Traffic(origin)
    context.route("**/*", traffic.route)
    return context, traffic


def watched_page(browser: Browser, origin: str, *, bypass_csp: bool = True) -> Iterator[tuple[Page, Traffic]]:
    """A 1280 px page on ``origin``; afterwards, nothing left the origin and no script failed."""
    context, traffic = open_context(browser, origin, bypass_csp=bypass_csp)
    page = context.new_page()
    page.on("pageerror", lambda error: traffic.errors.append(str(error)))
    yield page, traffic
    context.close()
    assert traffic.foreign == [], f"requests left the origin {origin}: {traffic.foreign}"
    assert traffic.errors == [], f"script errors: {traffic.errors}"


@pytest.fixture
def traffic_page(browser: Browser, server: GalleryServer) -> Iterator[tuple[Page, Traffic]]:
    """A watched page on the gallery's gateway."""
    yield from watched_page(browser, server.origin)


@pytest.fixture
def page(traffic_page: tuple[Page, Traffic]) -> Page:
    return traffic_page[0]


def save_screenshot(page: Page, artifacts_dir: Path, name: str, copy_to: Path | None = None) -> Path:
    path = artifacts_dir / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if copy_to is not None:
        copy_to.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy_to / path.name)
    return path
