"""Processing statistics, aggregated in the database so several gateways agree."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.di import Provide

from gateway.deps import GatewayServices, provide_services
from gateway.repository import ImageRepository


class StatsController(Controller):
    path = "/api/stats"
    tags = ["stats"]  # noqa: RUF012
    dependencies = {"services": Provide(provide_services, sync_to_thread=False)}  # noqa: RUF012

    @get("/", summary="Processing statistics")
    async def get_stats(self, services: GatewayServices) -> dict[str, Any]:
        stats = await services.database.read(lambda session: ImageRepository(session).stats())
        stats["uptime_s"] = services.uptime_s
        return stats
