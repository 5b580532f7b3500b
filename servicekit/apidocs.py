"""Swagger UI and Redoc served from files packaged with the project: the API docs work offline.

Litestar's render plugins load their scripts, styles and favicon from CDNs by default. These
subclasses point every URL at ``<docs path>/assets/...`` and register that static route on the
docs router, so a service only passes ``api_docs_plugins(docs_path)`` to its ``OpenAPIConfig``.
The pages also carry a Content-Security-Policy allowing only their own origin: Redoc's side menu
has a logo hard-wired to cdn.redoc.ly, which the browser then never asks for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import OpenAPIRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

ASSETS_DIR = Path(__file__).parent / "static" / "apidocs"
ASSETS_SUBPATH = "/assets"
ASSETS_ROUTER_NAME = "api-docs-assets"
ASSETS_CACHE_MAX_AGE_S = 3600
# Inline scripts and styles: both UIs start from an inline script and inject their styles; Redoc's
# search runs in a worker made from a blob.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'"
)
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'.encode()


def _register_assets(router: Router) -> None:
    """Add the static route once, whichever plugin is told about the router first."""
    assets_path = router.path.rstrip("/") + ASSETS_SUBPATH
    if any(route.path.startswith(assets_path) for route in router.routes):
        return
    router.register(
        create_static_files_router(
            path=ASSETS_SUBPATH,
            directories=[ASSETS_DIR],
            name=ASSETS_ROUTER_NAME,
            include_in_schema=False,
            cache_control=_cache_control(),
        )
    )


def _cache_control() -> CacheControlHeader:
    return CacheControlHeader(public=True, max_age=ASSETS_CACHE_MAX_AGE_S)


def _own_origin_only(page: bytes) -> bytes:
    """The page with the policy as the first element of its head, before anything it governs."""
    return page.replace(b"<head>", b"<head>" + CSP_META, 1)


def _favicon(assets_url: str) -> str:
    return f"<link rel='icon' type='image/svg+xml' href='{assets_url}/favicon.svg'>"


class _ServedFromThePackage(OpenAPIRenderPlugin):
    """Registers the vendored assets and keeps the page to its own origin; listed before a Litestar
    render plugin, whose ``render`` the MRO calls through ``super()``."""

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)
        _register_assets(router)

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:  # type: ignore[type-arg]
        return _own_origin_only(super().render(request, openapi_schema))  # type: ignore[safe-super]


class OfflineSwaggerRenderPlugin(_ServedFromThePackage, SwaggerRenderPlugin):
    """Swagger UI from ``swagger-ui-dist`` files in the package."""

    def __init__(self, *, docs_path: str, path: str = "/") -> None:
        assets_url = docs_path.rstrip("/") + ASSETS_SUBPATH
        super().__init__(
            path=path,
            js_url=f"{assets_url}/swagger-ui/swagger-ui-bundle.js",
            css_url=f"{assets_url}/swagger-ui/swagger-ui.css",
            standalone_preset_js_url=f"{assets_url}/swagger-ui/swagger-ui-standalone-preset.js",
            favicon=_favicon(assets_url),
        )


class OfflineRedocRenderPlugin(_ServedFromThePackage, RedocRenderPlugin):
    """Redoc from the ``redoc`` standalone bundle in the package, without Google Fonts."""

    def __init__(self, *, docs_path: str, path: str = "/redoc") -> None:
        assets_url = docs_path.rstrip("/") + ASSETS_SUBPATH
        super().__init__(
            path=path,
            js_url=f"{assets_url}/redoc/redoc.standalone.js",
            google_fonts=False,
            favicon=_favicon(assets_url),
        )


def api_docs_plugins(docs_path: str) -> list[OpenAPIRenderPlugin]:
    """Swagger UI at ``docs_path`` and Redoc at ``docs_path/redoc``, every asset served locally."""
    return [OfflineSwaggerRenderPlugin(docs_path=docs_path), OfflineRedocRenderPlugin(docs_path=docs_path)]
