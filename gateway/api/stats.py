"""Processing statistics, aggregated in the database so several gateways agree."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.di import NamedDependency, Provide

from gateway.deps import GatewayServices, provide_services
from gateway.repository import ImageRepository


class StatsController(Controller):
    path = "/api/stats"
    tags = ["stats"]
    dependencies = {"services": Provide(provide_services, sync_to_thread=False)}

    @get("/", summary="Processing statistics")
    async def get_stats(self, services: NamedDependency[GatewayServices]) -> dict[str, Any]:
        stats = await services.database.read(lambda session: ImageRepository(session).stats())
        stats["uptime_s"] = services.uptime_s
        return stats
