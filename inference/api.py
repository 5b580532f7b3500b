"""HTTP routes of the inference service: captions, model info, health, metrics."""

from __future__ import annotations

import time
from typing import Annotated, Any

import anyio.to_thread
import structlog
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import Parameter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from contracts.captions import (
    CAPTIONS_PATH,
    MAX_NEW_TOKENS_LIMIT,
    MAX_PROMPT_CHARS,
    CaptionResponse,
    CaptionTimings,
    ReadinessResponse,
)
from contracts.model_info import MODEL_INFO_PATH, BatchingInfo, ModelInfo
from inference.batcher import Batcher
from inference.captioner import Captioner, ModelDescription
from inference.errors import InvalidRequestError, ModelLoadFailedError, ModelNotReadyError
from inference.export_names import is_test_model_name
from inference.openapi import NOT_READY, CaptionOperation, caption_problems
from inference.preprocess import decode_image
from inference.state import InferenceServices, ModelPhase, ModelState

log = structlog.get_logger("inference.api")
NOT_READY_RETRY_AFTER_S = 5.0


def provide_services(state: State) -> InferenceServices:
    services: InferenceServices = state.services
    return services


class InferenceController(Controller):
    path = "/"
    dependencies = {"services": Provide(provide_services, sync_to_thread=False)}

    @post(
        CAPTIONS_PATH,
        status_code=200,
        summary="Caption a JPEG or PNG image (raw bytes in the body)",
        description="Optional `prompt` (conditional captioning) and `max_new_tokens`. EXIF orientation is applied.",
        operation_class=CaptionOperation,
        responses=caption_problems(),
    )
    async def create_caption(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[InferenceServices],
        prompt: Annotated[
            str | None, Parameter(max_length=MAX_PROMPT_CHARS, description="Text the caption starts with.")
        ] = None,
        max_new_tokens: Annotated[
            int | None,
            Parameter(
                ge=1,
                le=MAX_NEW_TOKENS_LIMIT,
                description="At most the served model's `max_new_tokens_limit` (/v1/model; the schema's maximum "
                "once the model is loaded), less the prompt's tokens.",
            ),
        ] = None,
    ) -> CaptionResponse:
        started = time.perf_counter()
        model = services.model
        captioner, batcher = _serving_model(model)
        await anyio.to_thread.run_sync(captioner.check_request, prompt or None, max_new_tokens)
        body = await request.body()
        if not body:
            raise InvalidRequestError("The request body is empty; send the image bytes.")
        image = await anyio.to_thread.run_sync(decode_image, body, services.settings.max_image_pixels)
        decoded_ms = (time.perf_counter() - started) * 1000
        result, timings = await batcher.submit(image, prompt or None, max_new_tokens)
        services.metrics.requests.labels("200").inc()
        described = model.description
        response = CaptionResponse(
            caption=result.caption,
            model=described.name if described else services.settings.model,
            revision=described.revision if described else None,
            precision=described.precision if described else services.settings.precision,
            tokens=result.new_tokens,
            timings_ms=CaptionTimings(
                preprocess=round(decoded_ms + timings.preprocess_ms, 2),
                encode=timings.encode_ms,
                decode=timings.decode_ms,
                total=round((time.perf_counter() - started) * 1000, 2),
            ),
        )
        log.info(
            "caption_served", width=image.width, height=image.height, tokens=response.tokens,
            prompted=prompt is not None, duration_ms=response.timings_ms.total,
        )  # fmt: skip
        return response

    @get(MODEL_INFO_PATH, summary="What model is served, and how")
    async def model_info(self, services: NamedDependency[InferenceServices]) -> ModelInfo:
        settings, model = services.settings, services.model
        described = model.description or ModelDescription(
            name=settings.model,
            revision=None,
            precision=settings.precision,
            providers=[],
            is_test_model=is_test_model_name(settings.model),
        )
        return ModelInfo(
            name=described.name,
            revision=described.revision,
            precision=described.precision,
            execution_providers=described.providers,
            providers=described.providers,
            device=described.device,
            runtime=described.runtime,
            batching=BatchingInfo(
                max_batch=settings.max_batch_on(described.device or settings.device),
                max_wait_ms=settings.max_wait_ms,
                queue_size=settings.queue_size,
            ),
            is_test_model=described.is_test_model,
            ready=model.ready,
            max_new_tokens_limit=described.max_new_tokens_limit,
        )

    @get("/health/live", summary="The process is up")
    async def live(self) -> dict[str, str]:
        return {"status": "alive"}

    @get("/health/ready", summary="Ready once the model is loaded and warmed up (503 otherwise)", responses=NOT_READY)
    async def ready(self, services: NamedDependency[InferenceServices]) -> Response[ReadinessResponse]:
        model = services.model
        if model.ready:
            return Response(ReadinessResponse(status="ready", detail=model.detail, state=model.phase))
        # A failed load is final: no short Retry-After that would invite polling.
        loading = model.phase is ModelPhase.LOADING
        headers = {"Retry-After": str(int(NOT_READY_RETRY_AFTER_S))} if loading else {}
        body = ReadinessResponse(status="not_ready", detail=model.detail, state=model.phase)
        return Response(body, status_code=503, headers=headers)

    @get("/metrics", summary="Prometheus metrics", media_type=CONTENT_TYPE_LATEST)
    async def metrics(self, services: NamedDependency[InferenceServices]) -> Response[bytes]:
        return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _serving_model(model: ModelState) -> tuple[Captioner, Batcher]:
    """The loaded model, or a 503 that says whether to come back soon (loading) or not (failed)."""
    if model.ready and model.captioner is not None and model.batcher is not None:
        return model.captioner, model.batcher
    if model.phase is ModelPhase.FAILED:
        raise ModelLoadFailedError(model.detail, extensions={"state": ModelPhase.FAILED.value})
    raise ModelNotReadyError(
        model.detail, retry_after_s=NOT_READY_RETRY_AFTER_S, extensions={"state": ModelPhase.LOADING.value}
    )
