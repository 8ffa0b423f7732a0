"""/services/{name} and /services/{name}/{subPath...}: invoke a service definition."""

from __future__ import annotations

from starlette.routing import Route

from servicegate.api.invocation import MAX_IDEMPOTENCY_KEY, RESPONSES, DefinitionEndpoint

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def routes() -> list[Route]:
    endpoint = DefinitionEndpoint("services")
    return [Route("/services/{name:definition}", endpoint, methods=METHODS),
            Route("/services/{name:definition}/{subpath:path}", endpoint, methods=METHODS)]


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
        "responses": RESPONSES,
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
