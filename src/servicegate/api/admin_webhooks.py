"""/admin/webhooks: every client's webhooks; enable or disable one (scope `admin`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from servicegate.api.guard import authorize
from servicegate.api.openapi import BOOL, INT, NULLABLE_TIME, model_schema, obj, ok, request_body
from servicegate.api.state import runtime_of
from servicegate.api.webhooks import WEBHOOK
from servicegate.auth.scopes import ADMIN
from servicegate.problems import Problem
from servicegate.web.bodies import json_body, validated
from servicegate.web.responses import JSONResponse
from servicegate.webhooks.store import NoSuchWebhook


class Disable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("disabled by an administrator", min_length=1, max_length=500)


async def list_all(request: Request) -> Response:
    await authorize(request, ADMIN)
    records = await runtime_of(request).webhooks.store.list_all()
    return JSONResponse({"count": len(records), "webHooks": [r.to_admin_json() for r in records]})


async def enable(request: Request) -> Response:
    await authorize(request, ADMIN)
    runtime = runtime_of(request)
    try:
        record = await runtime.webhooks.store.enable(request.path_params["webhook_id"][:64])
    except NoSuchWebhook:
        raise Problem(404, "no such webhook") from None
    runtime.events.wake()
    return JSONResponse(record.to_admin_json())


async def disable(request: Request) -> Response:
    await authorize(request, ADMIN)
    body = validated(Disable, await json_body(request, required=False) or {})
    try:
        record = await runtime_of(request).webhooks.store.disable(
            request.path_params["webhook_id"][:64], body.reason)
    except NoSuchWebhook:
        raise Problem(404, "no such webhook") from None
    return JSONResponse(record.to_admin_json())


def routes() -> list[Route]:
    return [
        Route("/admin/webhooks", list_all, methods=["GET"]),
        Route("/admin/webhooks/{webhook_id}/enable", enable, methods=["POST"]),
        Route("/admin/webhooks/{webhook_id}/disable", disable, methods=["POST"]),
    ]


_SEC = [{"oauth2apikey": ["admin"]}]
_ERR = {"400": {"$ref": "#/components/responses/Problem"},
        "401": {"$ref": "#/components/responses/Unauthorized"},
        "403": {"$ref": "#/components/responses/Forbidden"},
        "404": {"$ref": "#/components/responses/Problem"}}
ADMIN_WEBHOOK = {**WEBHOOK, "properties": {
    **WEBHOOK["properties"], "id": {"type": "string"}, "clientId": {"type": "string"},
    "hasSecret": BOOL, "consecutiveFailures": INT, "createdAt": NULLABLE_TIME}}
OPENAPI = {
    "/admin/webhooks": {"get": {
        "operationId": "listAllWebhooks", "tags": ["Admin"], "summary": "Every client's webhooks",
        "security": _SEC, "responses": {"200": ok("list", obj(
            count=INT, webHooks={"type": "array", "items": ADMIN_WEBHOOK})), **_ERR}}},
    "/admin/webhooks/{webhook_id}/enable": {"post": {
        "operationId": "enableWebhook", "tags": ["Admin"],
        "summary": "Enable a webhook; its held deliveries resume",
        "security": _SEC, "responses": {"200": ok("webhook", ADMIN_WEBHOOK), **_ERR}}},
    "/admin/webhooks/{webhook_id}/disable": {"post": {
        "operationId": "disableWebhook", "tags": ["Admin"],
        "summary": "Disable a webhook; its deliveries wait", "security": _SEC,
        "requestBody": request_body(model_schema(Disable), required=False),
        "responses": {"200": ok("webhook", ADMIN_WEBHOOK), **_ERR}}},
}
