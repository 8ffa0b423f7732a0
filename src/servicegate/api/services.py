"""/services/{name} and /services/{name}/{subPath...}: invoke a service definition."""

from __future__ import annotations

from starlette.routing import Route

from servicegate.api.invocation import MAX_IDEMPOTENCY_KEY, DefinitionEndpoint

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def routes() -> list[Route]:
    endpoint = DefinitionEndpoint("services")
    return [Route("/services/{name:definition}", endpoint, methods=METHODS),
            Route("/services/{name:definition}/{subpath:path}", endpoint, methods=METHODS)]


_RESPONSES = {
    "200": {"description": "What the definition's action produced (any JSON value)",
            "content": {"application/json": {"schema": {}}}},
    "202": {"description": "Asynchronous: the job was accepted; poll the `Location` "
            "(`GET /services/jobs/{jobId}`) after `Retry-After` seconds",
            "content": {"application/json": {"schema": {"type": "object", "properties": {
                "jobId": {"type": "string"}, "status": {"type": "string"}}}}}},
    "400": {"$ref": "#/components/responses/Problem"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/Problem"},
    "404": {"$ref": "#/components/responses/Problem"},
    "405": {"$ref": "#/components/responses/Problem"},
    "413": {"$ref": "#/components/responses/Problem"},
    "429": {"$ref": "#/components/responses/Problem"},
    "502": {"$ref": "#/components/responses/Problem"},
    "504": {"$ref": "#/components/responses/Problem"},
}
_PARAMS = [
    {"name": "serviceDefinition", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "async", "in": "query", "required": False,
     "schema": {"type": "string", "enum": ["true", "false", "1", "0"]}},
    {"name": "Idempotency-Key", "in": "header", "required": False,
     "description": "Asynchronous calls: the same key from the same client within 24 h "
     "returns the same job", "schema": {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY}},
]


def _operation(method: str, sub: bool) -> dict:
    params = list(_PARAMS)
    if sub:
        params.append({"name": "subPath", "in": "path", "required": True,
                       "schema": {"type": "string"}})
    op: dict = {
        "operationId": f"{method}Service{'SubPath' if sub else ''}",
        "tags": ["Services"],
        "summary": "Invokes a custom action based on a service definition",
        "security": [{"oauth2apikey": []}],
        "parameters": params,
        "responses": _RESPONSES,
    }
    if method in ("post", "put", "patch", "delete"):
        op["requestBody"] = {"required": False,
                             "content": {"application/json": {"schema": {}}}}
    return op


OPENAPI = {
    path: {m.lower(): _operation(m.lower(), sub) for m in METHODS}
    for path, sub in (("/services/{serviceDefinition}", False),
                      ("/services/{serviceDefinition}/{subPath}", True))
}
