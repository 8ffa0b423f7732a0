"""GET /openapi.json (OpenAPI 3.1, assembled from each API module's OPENAPI) and GET /docs."""

from __future__ import annotations

import copy
import re
from importlib import resources
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from servicegate import __version__
from servicegate.web.responses import JSONResponse

TAGS = [
    {"name": "Callback", "description": "Named callbacks invoked by partners and providers"},
    {"name": "Services", "description": "Custom actions based on service definitions"},
    {"name": "Webhooks", "description": "Register webhooks and follow their deliveries"},
    {"name": "Identity", "description": "Identity search"},
    {"name": "Auth", "description": "OAuth2 client credentials and signing keys"},
    {"name": "Admin", "description": "Client and credential management (scope admin)"},
    {"name": "Operations", "description": "Health, readiness, metrics and this document"},
]

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem; members besides the standard ones are extensions",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "instance": {"type": "string"},
        "traceId": {"type": "string", "description": "The request id (`X-Request-Id`)"},
        "errors": {"type": "array", "description": "One entry per invalid body member",
                   "items": {"type": "object", "properties": {
                       "pointer": {"type": "string", "description": "RFC 6901 JSON pointer"},
                       "message": {"type": "string"}}}},
        "parameter": {"type": "string", "description": "The query parameter at fault"},
        "position": {"type": "integer", "description": "The character at fault in it"},
        "definition": {"type": "string", "description": "The service definition at fault"},
        "limit": {"type": "integer", "description": "The body limit exceeded, in bytes"},
        "retryAfter": {"type": "integer", "description": "Seconds to wait"},
    },
    "additionalProperties": True,
}

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
    },
    "schemas": {"Problem": PROBLEM_SCHEMA},
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

_PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
# Any operation may answer these: the body limit, a body that arrives too slowly, and a crash
# (which is a bug, but is still answered as a problem).
_ANY_OPERATION = {"408": "The request body did not arrive in time",
                  "413": "The request body exceeds the limit",
                  "500": "The gateway failed; quote the traceId"}

OPENAPI = {
    "/openapi.json": {"get": {
        "operationId": "getOpenApi", "tags": ["Operations"], "summary": "This document",
        "security": [], "responses": {"200": {"description": "OpenAPI 3.1", "content": {
            "application/json": {"schema": {"type": "object"}}}}}}},
    "/docs": {"get": {
        "operationId": "getDocs", "tags": ["Operations"], "summary": "This document, rendered",
        "security": [], "responses": {"200": {"description": "HTML", "content": {
            "text/html": {"schema": {"type": "string"}}}}}}},
}


def ok(description: str, schema: dict[str, Any] | None = None,
       media: str = "application/json") -> dict[str, Any]:
    """A success response whose body has `schema` (any object by default)."""
    return {"description": description,
            "content": {media: {"schema": {"type": "object"} if schema is None else schema}}}


def obj(**properties: Any) -> dict[str, Any]:
    """An object schema with these properties (members not named may appear too)."""
    return {"type": "object", "properties": properties}


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
BOOL: dict[str, Any] = {"type": "boolean"}
TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
NULLABLE_STR: dict[str, Any] = {"type": ["string", "null"]}
NULLABLE_TIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}


#: component schemas of request bodies, filled by `model_schema` as the API modules import
SCHEMAS: dict[str, Any] = {}


def model_schema(model: type[BaseModel], *, name: str | None = None,
                 optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """A reference to the JSON schema pydantic validates `model` with (by alias, as requests
    spell it), under `name` (the model's by default), with the `optional` members no longer
    required. The schema and the definitions it refers to become component schemas, so the
    document cannot drift from the validation."""
    name = name or model.__name__
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    SCHEMAS.update(schema.pop("$defs", {}))
    if optional and "required" in schema:
        schema["required"] = [r for r in schema["required"] if r not in optional]
        if not schema["required"]:
            del schema["required"]
    SCHEMAS[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


def request_body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _complete(path: str, operation: dict[str, Any]) -> None:
    """Declare the path parameters a module left implicit and give every problem status a
    problem schema, so that each operation is valid and each response has a schema."""
    declared = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"}
    missing = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
               for name in re.findall(r"\{([^}]+)\}", path) if name not in declared]
    if missing:
        operation["parameters"] = [*operation.get("parameters", []), *missing]
    responses = operation["responses"]
    for status, response in responses.items():
        if status[0] in "45" and "$ref" not in response and "content" not in response:
            response["content"] = copy.deepcopy(_PROBLEM_CONTENT)
    for status, description in _ANY_OPERATION.items():
        responses.setdefault(status, {"description": description,
                                      "content": copy.deepcopy(_PROBLEM_CONTENT)})


def build_document(fragments: list[dict[str, Any]], base_path: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for fragment in [*fragments, OPENAPI]:
        for path, ops in copy.deepcopy(fragment).items():
            for operation in ops.values():
                _complete(path, operation)
            paths.setdefault(base_path + path, {}).update(ops)
    components = copy.deepcopy(COMPONENTS)
    components["schemas"].update(copy.deepcopy(SCHEMAS))
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
