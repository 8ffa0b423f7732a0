"""/callback/{name}: a definition exposed as a callback (any content type; signatures)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from servicegate.api.invocation import call_definition
from servicegate.web.routing import Route


async def callback(request: Request) -> Response:
    return await call_definition(request, "callback")


def routes() -> list[Route]:
    return [Route("/callback/{name}", callback, methods=["GET", "POST"])]


OPENAPI = {
    "/callback/{callbackName}": {
        method: {
            "tags": ["Callback"],
            "summary": "Invokes a custom action based on a service definition exposed as a "
                       "callback",
            "security": [{"oauth2apikey": []}, {}],
            "parameters": [{"name": "callbackName", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "What the definition's action produced"},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "404": {"$ref": "#/components/responses/Problem"},
            },
        }
        for method in ("get", "post")
    }
}
