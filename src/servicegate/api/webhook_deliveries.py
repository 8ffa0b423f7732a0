"""The caller's delivery log and replay: /webhooks/deliveries, /retry, /recover and /test."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from servicegate.api.guard import authorize
from servicegate.api.openapi import (
    BOOL,
    INT,
    NULLABLE_STR,
    NULLABLE_TIME,
    STR,
    array,
    model_schema,
    obj,
    ok,
    request_body,
)
from servicegate.api.state import runtime_of
from servicegate.api.webhooks import checked_events
from servicegate.auth.scopes import WEBHOOKS
from servicegate.clock import isoformat
from servicegate.problems import Problem
from servicegate.web import listing
from servicegate.web.bodies import parse
from servicegate.web.responses import JSONResponse
from servicegate.webhooks.deliveries import STATUSES, CannotRetry, NoSuchDelivery

_QUERY = {"url", "event", "status", "since", "cursor", "limit"}


class Recover(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2048)
    since: AwareDatetime


class TestDelivery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2048)
    event: str | None = Field(None, max_length=100)


class _Since(BaseModel):
    since: AwareDatetime


async def list_deliveries(request: Request) -> Response:
    principal = await authorize(request, WEBHOOKS)
    q = request.query_params
    listing.known_only(q, _QUERY)
    status = listing.one_of(q, "status", STATUSES)
    since: datetime | None = None
    if "since" in q:
        try:
            since = _Since.model_validate({"since": q["since"]}).since
        except ValidationError:
            raise listing.bad_query("since", "an ISO 8601 time with a zone, e.g. "
                                    "2026-01-31T12:00:00Z") from None
    limit = listing.limit(q, default=50, maximum=200)
    cursor = listing.cursor(q, "dlv_", 40)
    event = q.get("event")
    page = await runtime_of(request).webhooks.log.page(
        principal.client_id, url=q.get("url"), event=event.lower() if event else None,
        status=status, since=since, cursor=cursor, limit=limit)
    return JSONResponse({"count": len(page.items), "deliveries": page.items,
                         "next": page.next_cursor})


async def show_delivery(request: Request) -> Response:
    principal = await authorize(request, WEBHOOKS)
    try:
        found = await runtime_of(request).webhooks.log.detail(
            principal.client_id, request.path_params["delivery_id"][:64])
    except NoSuchDelivery:
        raise Problem(404, "you have no such delivery") from None
    return JSONResponse(found)


async def retry_delivery(request: Request) -> Response:
    principal = await authorize(request, WEBHOOKS)
    runtime = runtime_of(request)
    try:
        found = await runtime.webhooks.log.retry(principal.client_id,
                                                 request.path_params["delivery_id"][:64])
    except NoSuchDelivery:
        raise Problem(404, "you have no such delivery") from None
    except CannotRetry as exc:
        raise Problem(409, str(exc)) from None
    runtime.events.wake()
    return JSONResponse(found, status_code=202)


async def recover(request: Request) -> Response:
    principal = await authorize(request, WEBHOOKS)
    body = await parse(request, Recover)
    runtime = runtime_of(request)
    try:
        count = await runtime.webhooks.log.recover(principal.client_id, body.url, body.since)
    except NoSuchDelivery:
        raise Problem(404, "you have no webhook registered for this URL") from None
    except CannotRetry as exc:
        raise Problem(409, str(exc)) from None
    runtime.events.wake()
    return JSONResponse({"url": body.url, "since": isoformat(body.since), "requeued": count},
                        status_code=202)


async def test_delivery(request: Request) -> Response:
    principal = await authorize(request, WEBHOOKS)
    body = await parse(request, TestDelivery)
    service = runtime_of(request).webhooks
    hook = await service.store.find(principal.client_id, body.url)
    if hook is None:
        raise Problem(404, "you have no webhook registered for this URL")
    event = checked_events(request, [body.event])[0] if body.event else hook.events[0]
    result = await service.test_delivery(hook, event)
    if result.refused:
        # the same guard as every delivery: nothing was sent, the URL is what is wrong
        reason = (result.error or "").removeprefix("refused: ")
        raise Problem(400, f"the webhook's URL is refused: {reason}",
                      title="Target refused", url=hook.url)
    return JSONResponse({
        "url": hook.url, "event": event, "ok": result.ok, "statusCode": result.status_code,
        "durationMs": round(result.duration * 1000, 3), "responseBody": result.response_body,
        "error": result.error,
    })


def routes() -> list[Route]:
    return [
        Route("/webhooks/deliveries", list_deliveries, methods=["GET"]),
        Route("/webhooks/deliveries/{delivery_id}", show_delivery, methods=["GET"]),
        Route("/webhooks/deliveries/{delivery_id}/retry", retry_delivery, methods=["POST"]),
        Route("/webhooks/recover", recover, methods=["POST"]),
        Route("/webhooks/test", test_delivery, methods=["POST"]),
    ]


_SEC = [{"oauth2apikey": ["webhooks"]}]
_ERR = {"400": {"$ref": "#/components/responses/Problem"},
        "401": {"$ref": "#/components/responses/Unauthorized"},
        "403": {"$ref": "#/components/responses/Forbidden"},
        "404": {"$ref": "#/components/responses/Problem"}}
_PARAMS = [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
           for n in ("url", "event", "status", "since", "cursor", "limit")]
_NULLABLE_INT = {"type": ["integer", "null"]}
DELIVERY = obj(id=STR, eventId=STR, event=STR, url=STR, status=STR, sending=BOOL, retrying=BOOL,
               attempts=INT, nextAttemptAt=NULLABLE_TIME, lastStatusCode=_NULLABLE_INT,
               lastError=NULLABLE_STR, createdAt=NULLABLE_TIME, completedAt=NULLABLE_TIME)
_DETAIL = {**DELIVERY, "properties": {
    **DELIVERY["properties"], "data": {}, "occurredAt": NULLABLE_TIME,
    "attemptLog": array(obj(attempt=INT, at=NULLABLE_TIME, statusCode=_NULLABLE_INT,
                            durationMs={"type": ["number", "null"]}, responseBody=NULLABLE_STR,
                            error=NULLABLE_STR))}}
OPENAPI = {
    "/webhooks/deliveries": {
        "get": {"operationId": "listDeliveries", "tags": ["Webhooks"],
                "summary": "My deliveries, newest first (cursor paginated)",
                "security": _SEC, "parameters": _PARAMS,
                "responses": {"200": ok("count, deliveries, next", obj(
                    count=INT, deliveries=array(DELIVERY), next=NULLABLE_STR)), **_ERR}},
    },
    "/webhooks/deliveries/{delivery_id}": {
        "get": {"operationId": "getDelivery", "tags": ["Webhooks"],
                "summary": "One delivery with its attempt log",
                "security": _SEC, "responses": {"200": ok("delivery", _DETAIL), **_ERR}},
    },
    "/webhooks/deliveries/{delivery_id}/retry": {
        "post": {"operationId": "retryDelivery", "tags": ["Webhooks"],
                 "summary": "Send a delivery again now", "security": _SEC,
                 "responses": {"202": ok("delivery, queued", DELIVERY),
                               "409": {"$ref": "#/components/responses/Problem"}, **_ERR}},
    },
    "/webhooks/recover": {
        "post": {"operationId": "recoverDeliveries", "tags": ["Webhooks"],
                 "summary": "Re-queue failed deliveries of a URL since a time",
                 "security": _SEC, "requestBody": request_body(model_schema(Recover)),
                 "responses": {"202": ok("requeued count", obj(url=STR, since=STR, requeued=INT)),
                               "409": {"$ref": "#/components/responses/Problem"}, **_ERR}},
    },
    "/webhooks/test": {
        "post": {"operationId": "testWebhook", "tags": ["Webhooks"],
                 "summary": "Send a signed test delivery now", "security": _SEC,
                 "requestBody": request_body(model_schema(TestDelivery)),
                 "responses": {"200": ok("the outcome", obj(
                     url=STR, event=STR, ok=BOOL, statusCode=_NULLABLE_INT,
                     durationMs={"type": ["number", "null"]}, responseBody=NULLABLE_STR,
                     error=NULLABLE_STR)), **_ERR}},
    },
}
