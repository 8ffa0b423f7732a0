"""POST /events: publish one event or a batch (scope `events:publish`)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, RootModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from servicegate.api.guard import authorize
from servicegate.api.openapi import model_schema
from servicegate.api.state import runtime_of
from servicegate.api.webhooks import invalid
from servicegate.auth.scopes import EVENTS_PUBLISH
from servicegate.problems import Problem
from servicegate.web.bodies import json_body, validated
from servicegate.web.responses import JSONResponse
from servicegate.webhooks.errors import EventIdConflict
from servicegate.webhooks.publisher import NewEvent

EVENT_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    event: str = Field(min_length=1, max_length=100)
    data: Any = None
    id: str | None = Field(None, pattern=EVENT_ID)
    occurred_at: AwareDatetime | None = Field(None, alias="occurredAt")


class EventBatch(RootModel[Annotated[list[EventIn], Field(min_length=1)]]):
    pass


async def publish(request: Request) -> Response:
    principal = await authorize(request, EVENTS_PUBLISH)
    runtime = runtime_of(request)
    cfg = runtime.settings.webhooks
    raw = await json_body(request)
    single = isinstance(raw, dict)
    if not single and not isinstance(raw, list):
        raise Problem(400, "send one event object or a list of them")
    if isinstance(raw, list) and len(raw) > cfg.max_batch:
        raise Problem(400, f"a batch holds at most {cfg.max_batch} events, got {len(raw)}")
    items = [validated(EventIn, raw)] if single else validated(EventBatch, raw).root
    catalog = runtime.webhooks.catalog
    errors, prepared = [], []
    for i, item in enumerate(items):
        at = "" if single else f"/{i}"
        try:
            name = catalog.publishable(item.event)
        except ValueError as exc:
            errors.append({"pointer": f"{at}/event", "message": str(exc)})
            continue
        if len(orjson.dumps(item.data)) > cfg.max_event_bytes:
            errors.append({"pointer": f"{at}/data",
                           "message": f"data is larger than {cfg.max_event_bytes} bytes"})
            continue
        prepared.append(NewEvent(name, item.data, item.id, item.occurred_at))
    if errors:
        raise invalid(errors)
    try:
        ids = await runtime.events.publish_many(prepared, source=principal.client_id)
    except EventIdConflict as exc:
        raise Problem(409, str(exc), eventId=exc.event_id) from None
    body = {"id": ids[0]} if single else {"count": len(ids), "ids": ids}
    return JSONResponse(body, status_code=202)


def routes() -> list[Route]:
    return [Route("/events", publish, methods=["POST"])]


_EVENT = model_schema(EventIn, name="Event")
OPENAPI = {
    "/events": {
        "post": {
            "operationId": "publishEvents", "tags": ["Webhooks"],
            "summary": "Publish one event or a batch; idempotent on a caller-supplied id",
            "security": [{"oauth2apikey": ["events:publish"]}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "oneOf": [_EVENT, {"type": "array", "items": _EVENT, "minItems": 1,
                                   "description": "at most [webhooks] max_batch events "
                                                  "(1,000 unless configured)"}]}}}},
            "responses": {
                "202": {"description": "{id} for one event, {count, ids} for a batch",
                        "content": {"application/json": {"schema": {
                            "type": "object", "properties": {
                                "id": {"type": "string"}, "count": {"type": "integer"},
                                "ids": {"type": "array", "items": {"type": "string"}}}}}}},
                "400": {"$ref": "#/components/responses/Problem"},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Forbidden"},
                "409": {"$ref": "#/components/responses/Problem"},
            },
        }
    }
}
