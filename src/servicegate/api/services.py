"""/services/{name} and /services/{name}/{subPath...}: invoke a service definition.

The routes' app is `ServiceEndpoint` (api/service_call.py); `ServicesDispatch` finds them
ahead of the router, and GatewayMiddleware calls the endpoint directly (`direct`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Router
from starlette.types import Receive, Scope, Send

from servicegate.api.service_call import ServiceEndpoint, Trailer
from servicegate.api.service_jobs import MAX_KEY
from servicegate.definitions.models import RESERVED_NAMES
from servicegate.web.routing import Route

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
PLAIN, WITH_SUBPATH = "/services/{name}", "/services/{name}/{subpath:path}"
Direct = Callable[[Scope, Receive, Send, Trailer, list[int], int | None], Awaitable[None]]


def routes(base_path: str = "") -> list[Route]:
    endpoint = ServiceEndpoint(len([s for s in base_path.split("/") if s]) + 2)
    return [Route(PLAIN, endpoint, methods=METHODS), Route(WITH_SUBPATH, endpoint, methods=METHODS)]


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
        route = self.match(scope)
        if route is not None:
            await route.app(scope, receive, send)
        else:
            await self.router(scope, receive, send)

    def match(self, scope: Scope) -> BaseRoute | None:
        """The definition route of this request, its scope keys set as the router sets them;
        None: the router answers."""
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
                    return route
        return None

    def direct(self, scope: Scope) -> Direct | None:
        """`ServiceEndpoint.serve` when it answers this request (see GatewayMiddleware)."""
        route = self.match(scope)
        if route is None:
            return None
        app = route.app  # type: ignore[attr-defined]
        return app.serve if app.__class__ is ServiceEndpoint else None


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
