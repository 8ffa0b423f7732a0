"""GET /openapi.json (OpenAPI 3.1, assembled from each API module's OPENAPI) and GET /docs."""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from servicegate import __version__
from servicegate.web.responses import JSONResponse

TAGS = [
    {"name": "Callback", "description": "Named callbacks invoked by partners and providers"},
    {"name": "Services", "description": "Custom actions based on service definitions"},
    {"name": "Webhooks", "description": "Register webhooks and follow their deliveries"},
    {"name": "Auth", "description": "OAuth2 client credentials and signing keys"},
    {"name": "Admin", "description": "Client and credential management (scope admin)"},
    {"name": "Operations", "description": "Health, readiness and metrics"},
]

COMPONENTS: dict[str, Any] = {
    "securitySchemes": {
        "oauth2apikey": {
            "type": "oauth2",
            "description": "OAuth2 client credentials (Bearer JWT). An API key is accepted "
            "instead, in `X-API-Key` or as `Authorization: Bearer <key>`.",
            "flows": {"clientCredentials": {"tokenUrl": "/oauth2/token", "scopes": {
                "services": "all service definitions",
                "callback": "callbacks",
                "identity:read": "identity search",
                "webhooks": "manage own webhooks",
                "events:publish": "publish events",
                "admin": "administration",
            }}},
        },
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    },
    "schemas": {
        "Problem": {
            "type": "object",
            "properties": {
                "type": {"type": "string"}, "title": {"type": "string"},
                "status": {"type": "integer"}, "detail": {"type": "string"},
                "instance": {"type": "string"}, "traceId": {"type": "string"},
                "errors": {"type": "array", "items": {"type": "object", "properties": {
                    "pointer": {"type": "string"}, "message": {"type": "string"}}}},
            },
        }
    },
    "responses": {
        name: {"description": desc, "content": {"application/problem+json": {
            "schema": {"$ref": "#/components/schemas/Problem"}}}}
        for name, desc in (
            ("Problem", "An RFC 9457 problem"),
            ("Unauthorized", "Missing or invalid credentials"),
            ("Forbidden", "Valid credentials without the needed scope"),
        )
    },
}


def build_document(fragments: list[dict[str, Any]], base_path: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for fragment in fragments:
        for path, ops in fragment.items():
            paths.setdefault(base_path + path, {}).update(ops)
    components = copy.deepcopy(COMPONENTS)
    flows = components["securitySchemes"]["oauth2apikey"]["flows"]
    flows["clientCredentials"]["tokenUrl"] = base_path + "/oauth2/token"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ServiceGate - Custom services",
            "version": __version__,
            "description": "Custom services, callbacks, identity search and webhooks.",
        },
        "servers": [{"url": base_path or "/"}],
        "tags": TAGS,
        "paths": paths,
        "components": components,
    }


def routes(document: dict[str, Any]) -> list[Route]:
    html = resources.files("servicegate.static").joinpath("docs.html").read_text("utf-8")

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def docs(request: Request) -> Response:
        return HTMLResponse(html)

    return [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
