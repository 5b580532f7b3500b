"""``GET /api/events``: every gateway's state changes as Server-Sent Events, resumable by id."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from functools import partial
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIType
from litestar.params import HeaderParameter, Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from gateway.api.openapi import BAD_QUERY, STORAGE_FAILED
from gateway.deps import GatewayServices
from gateway.errors import InvalidQueryError
from gateway.persistence.event_log import event_data, events_after, newest_event_id
from gateway.persistence.models import Event
from servicekit.openapi import problem_responses

BATCH = 500
LAST_EVENT_ID_PATTERN = r"^\s*[0-9]+\s*$"


def message_of(event: Event) -> ServerSentEventMessage:
    return ServerSentEventMessage(id=str(event.id), event=event.type, data=json.dumps(asdict(event_data(event))))


def resume_point(last_event_id_header: str | None, after: int | None) -> int | None:
    if last_event_id_header is None or not last_event_id_header.strip():
        return after
    try:
        value = int(last_event_id_header.strip())
    except ValueError as exc:
        raise InvalidQueryError("Last-Event-ID must be the id of an event this stream sent.") from exc
    if value < 0:
        raise InvalidQueryError("Last-Event-ID must be the id of an event this stream sent.")
    return value


async def stream(services: GatewayServices, after: int, image_id: str | None) -> AsyncIterator[ServerSentEventMessage]:
    """Events after ``after`` as they commit; a heartbeat comment whenever the stream was quiet."""
    heartbeat_s = services.settings.events_heartbeat_s
    last_sent = time.monotonic()
    while True:
        woken = services.events.next_wakeup()
        events = await services.database.read(partial(events_after, after_id=after, image_id=image_id, limit=BATCH))
        for event in events:
            yield message_of(event)
            after = event.id or after
        now = time.monotonic()
        if events:
            last_sent = now
            if len(events) == BATCH:
                continue
        elif now - last_sent >= heartbeat_s:
            yield ServerSentEventMessage(data=None, comment="heartbeat")  # a comment only: no empty message
            last_sent = now
        await services.events.wait(woken, max(0.0, heartbeat_s - (time.monotonic() - last_sent)))


class EventsController(Controller):
    path = "/api/events"
    tags = ["events"]

    @get(
        "/",
        summary="State changes as Server-Sent Events",
        description=(
            "`id:` increases monotonically; `event:` is image.accepted, image.completed, image.failed, "
            "image.deleted, image.requeued or image.caption_updated; `data:` is JSON {id, status, caption, "
            "caption_status, error, at}, for image.caption_updated {id, caption, model, previous_model, at}. "
            "Resume with `Last-Event-ID` or `?after=`; without either the stream starts with the next new event. "
            "A comment line is sent as a heartbeat when the stream is quiet."
        ),
        media_type="text/event-stream",
        responses=problem_responses({400: BAD_QUERY, 503: STORAGE_FAILED}),
    )
    async def events(
        self,
        services: NamedDependency[GatewayServices],
        after: Annotated[
            int | None,
            Parameter(
                ge=0,
                description="Resume after this event id.",
                # Litestar leaves out the 0 minimum of an optional int (`after=null` stays valid: it is None).
                schema_extra={"minimum": 0},
            ),
        ] = None,
        image: Annotated[str | None, Parameter(max_length=64, description="Only events of this image.")] = None,
        last_event_id: Annotated[
            str | None,
            HeaderParameter(
                name="Last-Event-ID",
                required=False,
                pattern=LAST_EVENT_ID_PATTERN,
                # A header is a string or absent, never null (a client sent the text "null").
                schema_extra={"type": OpenAPIType.STRING, "oneOf": None},
            ),
        ] = None,
    ) -> ServerSentEvent:
        start = resume_point(last_event_id, after)
        if start is None:
            start = await services.database.read(newest_event_id)
        return ServerSentEvent(stream(services, start, image), headers={"Cache-Control": "no-cache"})
