"""Liveness, readiness (database, and the inference service relayed) and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.deps import GatewayServices
from gateway.schemas import InferenceHealth, ReadinessView, ReplicaHealth
from servicekit.request_id import request_id_of


class HealthController(Controller):
    path = "/"
    tags = ["health"]

    @get("/health/live", summary="The process is up")
    async def live(self) -> dict[str, str]:
        return {"status": "alive"}

    @get(
        "/health/ready",
        summary="Database and blob store reachable; inference readiness relayed, replica by replica",
        description="503 when the database is unreachable or the blob store cannot be used (`storage` "
        "then says in one sentence whether the endpoint, the credentials or the bucket is wrong). "
        "Inference readiness never fails this check: `inference.ready` is true when any replica is, "
        "`inference.detail` says in one sentence why not, and `inference.replicas` lists each replica with its "
        "state (`ready`, `ejected` or `unknown`).",
        responses={
            503: ResponseSpec(data_container=ReadinessView, description="The database or the blob store is unusable.")
        },
    )
    async def ready(
        self, request: Request[Any, Any, Any], services: NamedDependency[GatewayServices]
    ) -> Response[ReadinessView]:
        database_ok = await services.database.ping()
        storage_problem = services.storage.readiness()
        inference = await services.inference.readiness(request_id_of(request.scope))
        ready = database_ok and storage_problem is None
        view = ReadinessView(
            status="ready" if ready else "not_ready",
            database="ok" if database_ok else "unreachable",
            inference=InferenceHealth(
                ready=inference.ready,
                detail=inference.detail,
                replicas=[
                    ReplicaHealth(
                        url=replica.url, state=replica.state.value, in_flight=replica.in_flight, detail=replica.detail
                    )
                    for replica in inference.replicas
                ],
            ),
            storage=storage_problem or "ok",
        )
        return Response(view, status_code=200 if ready else 503)

    @get("/metrics", summary="Prometheus metrics", media_type=CONTENT_TYPE_LATEST, include_in_schema=True)
    async def metrics(self, services: NamedDependency[GatewayServices]) -> Response[bytes]:
        counts = await services.catalog.count_by_status()
        services.metrics.set_images_by_status(counts)
        return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
