"""Swagger UI and Redoc served from files packaged with the project: the API docs work offline.

Litestar's render plugins load their scripts, styles and favicon from CDNs by default. These
subclasses point every URL at ``<docs path>/assets/...`` and register that static route on the
docs router, so a service only passes ``api_docs_plugins(docs_path)`` to its ``OpenAPIConfig``.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import OpenAPIRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

ASSETS_DIR = Path(__file__).parent / "static" / "apidocs"
ASSETS_SUBPATH = "/assets"
ASSETS_ROUTER_NAME = "api-docs-assets"
ASSETS_CACHE_MAX_AGE_S = 3600


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


def _favicon(assets_url: str) -> str:
    return f"<link rel='icon' type='image/svg+xml' href='{assets_url}/favicon.svg'>"


class OfflineSwaggerRenderPlugin(SwaggerRenderPlugin):
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

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)
        _register_assets(router)


class OfflineRedocRenderPlugin(RedocRenderPlugin):
    """Redoc from the ``redoc`` standalone bundle in the package, without Google Fonts."""

    def __init__(self, *, docs_path: str, path: str = "/redoc") -> None:
        assets_url = docs_path.rstrip("/") + ASSETS_SUBPATH
        super().__init__(
            path=path,
            js_url=f"{assets_url}/redoc/redoc.standalone.js",
            google_fonts=False,
            favicon=_favicon(assets_url),
        )

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)
        _register_assets(router)


def api_docs_plugins(docs_path: str) -> list[OpenAPIRenderPlugin]:
    """Swagger UI at ``docs_path`` and Redoc at ``docs_path/redoc``, every asset served locally."""
    return [OfflineSwaggerRenderPlugin(docs_path=docs_path), OfflineRedocRenderPlugin(docs_path=docs_path)]
