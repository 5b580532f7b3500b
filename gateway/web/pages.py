"""Gallery pages (``/``, ``/images/{id}``) and the fragments the page's script swaps in (``/ui/...``).

Every card, detail panel and stats panel has one renderer, a Jinja2 template: the pages include
the fragments, and the script fetches the same fragments to page on and to update cards live.
Browsing works without JavaScript: filters and "next page" are plain links.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Request, Response, Router, get
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.di import NamedDependency
from litestar.params import Parameter
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from litestar.types import ControllerRouterHandler

from gateway.deps import GatewayServices
from gateway.errors import GatewayError, ImageNotFoundError, InvalidQueryError
from gateway.persistence.event_log import newest_event_id
from gateway.persistence.models import ImageStatus
from gateway.persistence.search import MAX_QUERY_CHARS, parse_query
from gateway.schemas import ImageDetails, ImageId, StatsView, details_of, stats_of
from gateway.web.formatting import TEMPLATE_GLOBALS
from servicekit.request_id import request_id_of

WEB_DIR = Path(__file__).parent
PAGE_SIZE = 30
STATUSES = [status.value for status in ImageStatus]
FINAL = {ImageStatus.COMPLETED.value, ImageStatus.FAILED.value}
# Nothing from another host, and no inline script or style: the page's own files only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)

StatusFilter = Annotated[str | None, Parameter(description="Only images in this status.")]
Cursor = Annotated[str | None, Parameter(description="next_cursor of the previous page.")]
Search = Annotated[str | None, Parameter(description="Words every caption shown must hold.")]


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    def add_globals(engine: JinjaTemplateEngine) -> None:
        engine.engine.globals.update(
            TEMPLATE_GLOBALS, statuses=STATUSES, final_statuses=FINAL, max_query_chars=MAX_QUERY_CHARS
        )
        engine.engine.trim_blocks = engine.engine.lstrip_blocks = True

    return TemplateConfig(directory=WEB_DIR / "templates", engine=JinjaTemplateEngine, engine_callback=add_globals)


def static_files_router() -> Router:
    return create_static_files_router(
        path="/ui/static",
        directories=[WEB_DIR / "static"],
        name="gallery-static",
        include_in_schema=False,
        cache_control=CacheControlHeader(no_cache=True),
    )


def parse_status(status: str | None) -> ImageStatus | None:
    if not status:
        return None
    if status not in STATUSES:
        raise InvalidQueryError(f"Unknown status '{status[:40]}'; choose one of {', '.join(STATUSES)}.")
    return ImageStatus(status)


def render_error(_request: Request[Any, Any, Any], exc: GatewayError) -> Response[bytes]:
    """Pages answer people: an HTML page with the problem's sentence, and the API's status code."""
    context = {"status": exc.status, "title": exc.title, "detail": exc.detail}
    return Template("error.html", context=context, status_code=exc.status)


async def load_stats(services: GatewayServices) -> StatsView:
    """What ``GET /api/stats`` answers."""
    aggregates = await services.catalog.stats()
    return stats_of(aggregates, services.uptime_s)


async def load_page(
    services: GatewayServices, status: str | None, cursor: str | None, q: str | None = None
) -> dict[str, Any]:
    wanted, search = parse_status(status), parse_query(q)
    page = await services.catalog.page(wanted, PAGE_SIZE, cursor or None, search)
    cards: list[ImageDetails] = [details_of(image) for image in page.items]
    return {
        "cards": cards,
        "status": wanted.value if wanted else None,
        "next_cursor": page.next_cursor,
        "q": q.strip() if search is not None and q is not None else None,
    }


async def stats_context(request: Request[Any, Any, Any], services: GatewayServices) -> dict[str, Any]:
    """The stats panel's data: what ``/api/stats`` and ``/health/ready`` answer."""
    readiness = await services.inference.readiness(request_id_of(request.scope))
    return {"stats": await load_stats(services), "inference": readiness}


class GalleryController(Controller):
    """HTML for people; the JSON API stays under ``/api``."""

    path = "/"
    include_in_schema = False
    exception_handlers = {GatewayError: render_error}
    response_headers = [ResponseHeader(name="Content-Security-Policy", value=CONTENT_SECURITY_POLICY)]

    @get("/")
    async def gallery(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[GatewayServices],
        status: StatusFilter = None,
        cursor: Cursor = None,
        q: Search = None,
    ) -> Template:
        events_after = await services.database.read(newest_event_id)  # read first: no change falls between
        context = await load_page(services, status, cursor, q)
        context.update(await stats_context(request, services))
        context.update(api_key_required=bool(services.settings.api_key), events_after=events_after)
        return Template("gallery.html", context=context)

    @get("/images/{image_id:str}")
    async def image_page(self, services: NamedDependency[GatewayServices], image_id: ImageId) -> Template:
        events_after = await services.database.read(newest_event_id)
        image = details_of(await services.catalog.load(image_id))
        context = {"image": image, "api_key_required": bool(services.settings.api_key), "events_after": events_after}
        return Template("image.html", context=context)

    @get("/ui/cards")
    async def cards_fragment(
        self,
        services: NamedDependency[GatewayServices],
        status: StatusFilter = None,
        cursor: Cursor = None,
        q: Search = None,
    ) -> Template:
        return Template("_page.html", context=await load_page(services, status, cursor, q))

    @get("/ui/cards/{image_id:str}")
    async def card_fragment(
        self, services: NamedDependency[GatewayServices], image_id: ImageId, q: Search = None
    ) -> Template:
        """One card; with ``q``, a 404 unless its caption holds every word (how a search page adds cards live)."""
        image = await services.catalog.load(image_id)
        search = parse_query(q)
        if search is not None and not await services.catalog.matches(image_id, search):
            raise ImageNotFoundError(f"The caption of image {image_id} does not hold every word of '{q}'.")
        return Template("_card.html", context={"card": details_of(image)})

    @get("/ui/details/{image_id:str}")
    async def details_fragment(self, services: NamedDependency[GatewayServices], image_id: ImageId) -> Template:
        image = details_of(await services.catalog.load(image_id))
        return Template("_details.html", context={"image": image})

    @get("/ui/stats")
    async def stats_fragment(
        self, request: Request[Any, Any, Any], services: NamedDependency[GatewayServices]
    ) -> Template:
        return Template("_stats.html", context=await stats_context(request, services))


def web_routes() -> list[ControllerRouterHandler]:
    """The gallery's pages, fragments and static files."""
    return [GalleryController, static_files_router()]
