"""Re-captioning: queue the captions another model made (or every caption) for the model now served."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED
from pydantic import ValidationError

from gateway.api.openapi import BAD_KEY, STORAGE_FAILED
from gateway.deps import GatewayServices, require_api_key
from gateway.errors import InvalidBodyError
from gateway.schemas import RecaptionQueued, RecaptionRequest
from servicekit.openapi import problem_responses


class CaptionsController(Controller):
    path = "/api/captions"
    tags = ["captions"]

    @post(
        "/recaption",
        status_code=HTTP_202_ACCEPTED,
        guards=[require_api_key],
        summary="Re-caption the images another model captioned",
        description=(
            "Queues every captioned image whose caption was not made by the model the inference replicas now "
            "serve (id, revision and precision as their `GET /v1/model` reports them), or every captioned image "
            "with `all: true`. Answers at once with how many were queued; the gateways re-caption them in the "
            "background, after uploads, and `GET /api/stats` counts `recaption` queued, done and failed. "
            "The old caption stays until the new one is saved; then `image.caption_updated` is sent."
        ),
        responses=problem_responses(
            {
                400: 'The body is not `{"all": true|false}`.',
                401: BAD_KEY,
                409: "The ready inference replicas serve different models (without `all`).",
                503: "No inference replica is ready to say which model it serves (without `all`), or " + STORAGE_FAILED,
            }
        ),
    )
    async def recaption(
        self,
        services: NamedDependency[GatewayServices],
        request: Request[Any, Any, Any],
        data: JSONBody[RecaptionRequest],  # noqa: ARG002 - declares the body in the schema
    ) -> RecaptionQueued:
        # ``data`` declares the body in the schema; Litestar decodes it leniently (0, 1, "false" become
        # booleans), so the body is validated strictly again here.
        try:
            body = RecaptionRequest.model_validate_json(await request.body(), strict=True)
        except ValidationError as exc:
            raise InvalidBodyError(f'The body must be {{"all": true|false}}: {exc.errors()[0]["msg"]}.') from exc
        current = None if body.all else await services.inference.served_model()
        queued = await services.catalog.queue_recaptions(current)
        services.recaptioner.notify()
        return RecaptionQueued(queued=queued)
