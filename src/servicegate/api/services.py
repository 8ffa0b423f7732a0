"""/services/{name} and /services/{name}/{subPath...}: invoke a service definition."""

from __future__ import annotations

from typing import Any

from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Router
from starlette.types import Receive, Scope, Send

from servicegate.actions.invoke import invoke
from servicegate.auth.principal import Principal
from servicegate.auth.scopes import SERVICES
from servicegate.definitions.compiled import CompiledDefinition
from servicegate.definitions.models import RESERVED_NAMES
from servicegate.jobs.store import IdempotencyMismatch
from servicegate.runtime import Runtime, runtime_of
from servicegate.web.dispatch import (
    RawResponse,
    check_input,
    check_method,
    count,
    rate_limit,
    respond,
    respond_constant,
)
from servicegate.web.guard import authenticate, require_scopes
from servicegate.web.invocation import (
    async_flag,
    build_context,
    may_have_body,
    query_pairs,
    read_body,
    stored_context,
    subpath_segments,
)
from servicegate.web.problems import ProblemError
from servicegate.web.responses import dumps
from servicegate.web.routing import Route

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
PLAIN, WITH_SUBPATH = "/services/{name}", "/services/{name}/{subpath:path}"
MAX_KEY = 255


def routes(base_path: str = "") -> list[Route]:
    depth = len([s for s in base_path.split("/") if s]) + 2

    async def service(request: Request) -> Response:
        runtime = runtime_of(request)
        principal = await authenticate(request, runtime)
        name = request.scope["path_params"]["name"]
        definition = runtime.definitions.get(name)
        if definition is None or "services" not in definition.expose:
            raise ProblemError(404, f"no service definition named {name!r}")
        try:
            response = await _invoke(request, runtime, definition, principal, depth)
        except ProblemError as exc:
            count(name, "services", exc.status)
            raise
        count(name, "services", response.status_code)
        return response

    return [
        Route(PLAIN, service, methods=METHODS),
        Route(WITH_SUBPATH, service, methods=METHODS),
    ]


class ServicesDispatch:
    """Sends `/services/{name}[/...]` straight to the definition routes, ahead of the router.

    Starlette's router would try every earlier route's regex and pass through three more
    frames (which every upstream answer resumes again). The result is the router's: the
    fixed `/services/<segment>...` routes listed before the definition routes (ping,
    identity, jobs, ... and every reserved name) and any other method (HEAD, OPTIONS: 405)
    still go through the router, and `scope["route"]` is the same route object, so metrics
    keep the route template as label.
    """

    def __init__(self, router: Router, base_path: str = "") -> None:
        self.router = router
        self.prefix = f"{base_path}/services/"
        by_path = {getattr(r, "path", None): r for r in router.routes}
        self.plain = by_path[base_path + PLAIN]
        self.with_subpath = by_path[base_path + WITH_SUBPATH]
        self.delegated: frozenset[str] | None = _fixed_names(
            router.routes[:router.routes.index(self.plain)], self.prefix)
        self.methods = frozenset(METHODS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in self.methods:
            path = get_route_path(scope) if scope.get("root_path") else scope["path"]
            if path.startswith(self.prefix) and self.delegated is not None:
                name, slash, subpath = path[len(self.prefix):].partition("/")
                if name and name not in self.delegated:
                    if slash:
                        route, params = self.with_subpath, {"name": name, "subpath": subpath}
                    else:
                        route, params = self.plain, {"name": name}
                    scope["router"] = self.router
                    scope["route"] = route
                    scope["endpoint"] = route.endpoint
                    scope["path_params"] = params
                    await route.app(scope, receive, send)
                    return
        await self.router(scope, receive, send)


def _fixed_names(earlier: list[BaseRoute], prefix: str) -> frozenset[str] | None:
    """First segments under `prefix` the routes before the definition routes may answer.

    None (dispatch nothing) when an earlier route's first segment there is a parameter.
    """
    names = set(RESERVED_NAMES)
    for route in earlier:
        path = getattr(route, "path", "")
        if path.startswith(prefix):
            segment = path[len(prefix):].split("/", 1)[0]
            if "{" in segment or not segment:
                return None
            names.add(segment)
    return frozenset(names)


async def _invoke(request: Request, runtime: Runtime, definition: CompiledDefinition,
                  principal: Principal, depth: int) -> Response:
    """Everything after the definition is known (counted per definition by the caller)."""
    scope = request.scope
    held = principal.scopes
    # the common case in one step: `services` or `services:<name>`, and the other scopes held
    if not ((SERVICES in held or definition.service_scopes[0] in held)
            and held.issuperset(definition.scopes)):
        require_scopes(principal, *definition.service_scopes)
    method = scope["method"]
    if method not in definition.methods:
        check_method(definition, method)
    query = query_pairs(request) if scope.get("query_string") else []
    run_async = False
    async_mode = definition.async_mode
    if query or async_mode == "always":
        run_async, query = async_flag(query)
        if run_async and async_mode == "forbidden":
            raise ProblemError(400, f"definition {definition.name!r} does not allow asynchronous "
                               "invocation", definition=definition.name)
    deferred = bool(run_async) or async_mode == "always"
    key = idempotency_key(request) if deferred else None
    limit_headers = ({} if definition.limiter is None
                     else rate_limit(definition, principal.client_id))
    # `/services/{name}` (no sub-path parameter) has no raw segments after the name either:
    # decoding can only add slashes, never remove them.
    segments = subpath_segments(request, depth) if "subpath" in scope["path_params"] else []
    raw, body = b"", None
    if may_have_body(request):
        raw, body, _ = await read_body(request, definition, any_type=False)
    if definition.validator is not None:
        check_input(definition, body)
    if deferred:
        stored = stored_context(request, definition, principal, segments, query, raw, body)
        return await _submit(request, runtime, stored, principal, key, limit_headers)
    constant = definition.action.constant
    if constant is not None:  # the same answer for everyone: no context
        return respond_constant(constant, limit_headers)
    context = build_context(request, definition, "services", principal, segments, query,
                            raw, body, None)
    result = await invoke(definition, context, runtime)
    return respond(result, limit_headers)


def origin(request: Request) -> str:
    """`scheme://host[:port]` as the client addressed us (cheaper than `request.base_url`)."""
    scope = request.scope
    for name, value in scope["headers"]:
        if name == b"host":
            return f"{scope['scheme']}://{value.decode('latin-1')}"
    host, port = scope.get("server") or ("localhost", None)
    return f"{scope['scheme']}://{host}:{port}" if port else f"{scope['scheme']}://{host}"


def idempotency_key(request: Request) -> str | None:
    # the first one, as `request.headers.get` (ASGI names are lowercase bytes)
    raw = next((v for n, v in request.scope["headers"] if n == b"idempotency-key"), None)
    if raw is None:
        return None
    value = raw.decode("latin-1").strip().strip('"')
    if not 1 <= len(value) <= MAX_KEY or not value.isprintable() or not value.isascii():
        raise ProblemError(400, f"the Idempotency-Key header must be 1 to {MAX_KEY} printable "
                           "ASCII characters")
    return value


async def _submit(request: Request, runtime: Runtime, context: dict[str, Any],
                  principal: Principal, key: str | None,
                  limit_headers: dict[str, str]) -> Response:
    """Everything is validated: store the job and answer 202 (asynchronous request-reply)."""
    try:
        submitted = await runtime.jobs.submit(context, principal.client_id, key)
    except IdempotencyMismatch:
        raise ProblemError(422, "this Idempotency-Key was already used for a different "
                           "request (method, service, sub-path, query or body)",
                           title="Idempotency key reused") from None
    headers = {
        "Location": f"{origin(request)}{runtime.settings.server.base_path}"
                    f"/services/jobs/{submitted.job_id}",
        "Retry-After": runtime.jobs.retry_after,
        **limit_headers,
    }
    if submitted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return RawResponse(dumps({"jobId": submitted.job_id, "status": submitted.status}), 202,
                       headers, "application/json")


_RESPONSES = {
    "200": {"description": "What the definition's action produced"},
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
     "returns the same job", "schema": {"type": "string", "maxLength": MAX_KEY}},
]


def _operation(method: str, sub: bool) -> dict:
    params = list(_PARAMS)
    if sub:
        params.append({"name": "subPath", "in": "path", "required": True,
                       "schema": {"type": "string"}})
    op: dict = {
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
