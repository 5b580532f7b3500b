"""Processing statistics from counters kept in the database (constant time), so several gateways agree."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency, Provide

from gateway.api.openapi import STORAGE_FAILED, problem_responses
from gateway.deps import GatewayServices, provide_services
from gateway.persistence.repository import ImageRepository
from gateway.schemas import StatsView, stats_of


class StatsController(Controller):
    path = "/api/stats"
    tags = ["stats"]
    dependencies = {"services": Provide(provide_services, sync_to_thread=False)}

    @get(
        "/",
        summary="Processing statistics",
        responses=problem_responses({503: STORAGE_FAILED}),
    )
    async def get_stats(self, services: NamedDependency[GatewayServices]) -> StatsView:
        snapshot = await services.database.read(lambda session: ImageRepository(session).stats())
        return stats_of(snapshot, services.uptime_s)
