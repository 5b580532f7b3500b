"""Processing statistics from counters kept in the database (constant time), so several gateways agree."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from gateway.api.openapi import STORAGE_FAILED
from gateway.deps import GatewayServices
from gateway.schemas import StatsView, stats_of
from servicekit.openapi import problem_responses


class StatsController(Controller):
    path = "/api/stats"
    tags = ["stats"]

    @get(
        "/",
        summary="Processing statistics",
        responses=problem_responses({503: STORAGE_FAILED}),
    )
    async def get_stats(self, services: NamedDependency[GatewayServices]) -> StatsView:
        snapshot = await services.catalog.stats()
        return stats_of(snapshot, services.uptime_s)
