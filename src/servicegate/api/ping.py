"""GET /services/ping, /callback/ping, /webhooks/ping: authenticated liveness, answering {}."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from servicegate.api.guard import authenticate
from servicegate.web.responses import JSONResponse

GROUPS = {"services": "Services", "callback": "Callback", "webhooks": "Webhooks"}


async def ping(request: Request) -> Response:
    await authenticate(request)
    return JSONResponse({})


def route(group: str) -> Route:
    return Route(f"/{group}/ping", ping, methods=["GET"])


def routes() -> list[Route]:
    return [route(group) for group in GROUPS]


OPENAPI = {
    f"/{group}/ping": {
        "get": {
            "operationId": f"ping{tag}",
            "tags": [tag],
            "summary": "Make a ping request to see that the service is up and running.",
            "security": [{"oauth2apikey": []}],
            "responses": {
                "200": {"description": "Always an empty object",
                        "content": {"application/json": {
                            "schema": {"type": "object", "maxProperties": 0}, "example": {}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"},
            },
        }
    }
    for group, tag in GROUPS.items()
}
