"""/callback/{name}: a definition exposed as a callback (any content type; signatures)."""

from __future__ import annotations

from starlette.routing import Route

from servicegate.api.invocation import RESPONSES, DefinitionEndpoint


def routes() -> list[Route]:
    return [Route("/callback/{name:definition}", DefinitionEndpoint("callback"),
                  methods=["GET", "POST"])]


OPENAPI = {
    "/callback/{callbackName}": {
        method: {
            "operationId": f"{method}Callback",
            "tags": ["Callback"],
            "summary": "Invokes a custom action based on a service definition exposed as a "
                       "callback",
            "security": [{"oauth2apikey": []}, {}],
            "parameters": [{"name": "callbackName", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": RESPONSES,
        }
        for method in ("get", "post")
    }
}
# A callback takes what its provider sends: any content type, or none.
OPENAPI["/callback/{callbackName}"]["post"]["requestBody"] = {
    "required": False, "description": "Any custom defined input",
    "content": {"application/json": {"schema": {}}, "*/*": {"schema": {}}}}
