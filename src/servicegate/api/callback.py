"""/callback/{name}: a definition exposed as a callback (any content type; signatures)."""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.responses import Response

from servicegate.actions.invoke import invoke
from servicegate.auth.principal import Principal
from servicegate.auth.scopes import CALLBACK
from servicegate.definitions.compiled import CompiledDefinition
from servicegate.runtime import runtime_of
from servicegate.signatures import SignatureInvalid, SignatureUnavailable
from servicegate.web.dispatch import check_input, check_method, count, rate_limit, respond
from servicegate.web.guard import authenticate, require_scopes
from servicegate.web.invocation import build_context, query_pairs, read_body
from servicegate.web.problems import ProblemError
from servicegate.web.routing import Route

log = structlog.get_logger("servicegate.callback")


def routes() -> list[Route]:
    return [Route("/callback/{name}", callback, methods=["GET", "POST"])]


async def callback(request: Request) -> Response:
    runtime = runtime_of(request)
    name = request.path_params["name"]
    definition = runtime.definitions.get(name)
    principal: Principal | None = None
    mode = definition.auth_mode if definition is not None else "required"
    if mode == "required" or (mode == "optional" and _has_credentials(request)):
        principal = await authenticate(request)
    if definition is None or "callback" not in definition.expose:
        raise ProblemError(404, f"no callback named {name!r}")
    try:
        response = await _invoke(request, definition, principal)
    except ProblemError as exc:
        count(name, "callback", exc.status)
        raise
    count(name, "callback", response.status_code)
    return response


async def _invoke(request: Request, definition: CompiledDefinition,
                  principal: Principal | None) -> Response:
    name = definition.name
    if definition.auth_mode == "required":
        assert principal is not None
        require_scopes(principal, CALLBACK, *definition.scopes)
    check_method(definition, request.method)
    key = principal.client_id if principal else f"ip:{_client_ip(request)}"
    limit_headers = rate_limit(definition, key)  # before reading: floods of bad signatures too
    raw, body, form = await read_body(request, definition, any_type=True)
    if definition.verifier is not None:
        try:
            definition.verifier.verify(raw, request.headers)
        except SignatureInvalid as exc:
            raise ProblemError(401, f"signature check failed: {exc}", definition=name) from None
        except SignatureUnavailable as exc:
            log.error("signature_secret_missing", definition=name, reason=str(exc))
            raise ProblemError(500, f"callback {name!r} cannot verify signatures: its secret is "
                               "not configured", definition=name) from None
    check_input(definition, body)
    context = build_context(request.scope, definition, "callback", principal, [],
                            query_pairs(request.scope), raw, body, form)
    result = await invoke(definition, context, runtime_of(request))
    return respond(result, limit_headers)


def _has_credentials(request: Request) -> bool:
    return "x-api-key" in request.headers or "authorization" in request.headers


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


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
