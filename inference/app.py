"""create_app(): the inference service's Litestar app. The model loads in the background:
the service is up at once and turns ready after the load and one warm-up caption."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import structlog
from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from PIL import Image

from inference.api import InferenceController
from inference.batcher import Batcher
from inference.captioner import BlipCaptioner, Captioner
from inference.metrics import InferenceMetrics
from inference.model_files import ModelFilesError
from inference.model_source import ModelUnavailableError, resolve_model_dir
from inference.openapi import ServedModelSchemaPlugin
from inference.problems import EXCEPTION_HANDLERS
from inference.runtimes import RuntimeUnavailableError
from inference.sessions import DeviceUnavailableError
from inference.settings import InferenceSettings
from inference.state import InferenceServices, ModelPhase, ModelState
from servicekit.apidocs import api_docs_plugins
from servicekit.methods import head_as_get, options_allow_all
from servicekit.request_id import request_id_middleware

log = structlog.get_logger("inference.app")
WARM_UP_SIZE_PX = 64


async def load_model(services: InferenceServices, captioner: Captioner | None) -> None:
    """Resolve (export if needed), load, warm up; on failure stay up and say why."""
    settings, state = services.settings, services.model
    try:
        if captioner is None:
            model_dir = await resolve_model_dir(settings)
            load = functools.partial(
                BlipCaptioner.load, model_dir, settings.threads, settings.device, settings.runtime,
                int8_decoder=settings.openvino_decoder_weights == "int8",
            )  # fmt: skip
            captioner = await anyio.to_thread.run_sync(load)
        warm_up = Image.new("RGB", (WARM_UP_SIZE_PX, WARM_UP_SIZE_PX), (128, 128, 128))
        await anyio.to_thread.run_sync(captioner.caption_batch, [warm_up], None, 2)
    except (
        ModelUnavailableError,
        ModelFilesError,
        DeviceUnavailableError,
        RuntimeUnavailableError,
        OSError,
    ) as exc:
        state.phase, state.detail = ModelPhase.FAILED, f"No model can be served: {exc}"
        log.error("model_unavailable", model=settings.model, reason=str(exc))  # noqa: TRY400 (the reason is enough)
        return
    except Exception as exc:  # onnxruntime and tokenizers raise their own types: never hang in "loading"
        reason = (str(exc).strip().splitlines() or [""])[0][:300]
        state.phase = ModelPhase.FAILED
        state.detail = (
            f"No model can be served: loading {settings.model} failed ({type(exc).__name__}: {reason}). "
            "Export it again, or set INFERENCE_MODEL to another model."
        )
        log.exception("model_load_failed", model=settings.model)
        return
    description = captioner.describe()
    batcher = Batcher(
        captioner, services.metrics, max_batch=settings.max_batch_on(description.device or "cpu"),
        max_wait_ms=settings.max_wait_ms, queue_size=settings.queue_size, request_timeout_s=settings.request_timeout_s,
    )  # fmt: skip
    batcher.start()
    state.captioner, state.batcher, state.description = captioner, batcher, description
    services.metrics.observe_providers(description.providers, description.device or "cpu")
    services.metrics.observe_runtime(description.runtime)
    state.detail = "The model is loaded and warmed up."
    if state.description.is_test_model:
        state.detail += " It is the random tiny-random TEST model: its captions are nonsense words."
        log.warning("test_model_served", model=state.description.name)
    state.phase = ModelPhase.READY
    services.metrics.ready.set(1)
    log.info("model_ready", **dataclasses.asdict(state.description))


def create_app(settings: InferenceSettings | None = None, *, captioner: Captioner | None = None) -> Litestar:
    """Build the app; ``captioner`` replaces the ONNX model in tests."""
    settings = settings or InferenceSettings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services = InferenceServices(settings=settings, metrics=InferenceMetrics(), model=ModelState())
        app.state.services = services
        loader = asyncio.create_task(load_model(services, captioner), name="inference-model-loader")
        try:
            yield
        finally:
            loader.cancel()
            await asyncio.wait([loader])
            if services.model.batcher is not None:
                await services.model.batcher.stop()

    app = Litestar(
        route_handlers=[InferenceController],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.max_body_bytes,
        logging_config=None,
        openapi_config=OpenAPIConfig(
            title="Image pipeline inference",
            version="1.0.0",
            path="/docs",
            render_plugins=[*api_docs_plugins("/docs"), ServedModelSchemaPlugin()],
        ),
    )
    # Litestar runs app-level middleware only for matched routes; wrapping its ASGI handler gives
    # 404 and 405 answers (and their logs) a request id too.
    app.asgi_handler = request_id_middleware(options_allow_all(head_as_get(app.asgi_handler)))
    return app
