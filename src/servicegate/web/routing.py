"""Routes with a lean endpoint wrapper for the hot path.

Starlette wraps every endpoint in a second exception-handling layer; ours answers a
ProblemError right here and leaves everything else to the app-level handlers, which saves
about a tenth of an authenticated ping.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence

from starlette import routing
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from servicegate.web.problems import ProblemError, from_error

Endpoint = Callable[[Request], Awaitable[Response]]


def _lean(endpoint: Endpoint) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except ProblemError as exc:
            response = from_error(request, exc)
        await response(scope, receive, send)

    return app


class Route(routing.Route):
    """A route whose endpoint is a `Request -> Response` function (wrapped lean) or, as in
    Starlette, an ASGI app (used as it is).

    `exclusive`: the path is this route's whatever the method, so another method is answered
    405 (with `Allow`) here. Starlette's router otherwise lets a later route with a parameter
    take it: `POST /services/ping` went to the definitions route and came back 404 "no
    service definition named 'ping'" (a reserved name)."""

    def __init__(self, path: str, endpoint: Endpoint | ASGIApp, *,
                 methods: Sequence[str] | None = None, name: str | None = None,
                 exclusive: bool = False) -> None:
        super().__init__(path, endpoint, methods=list(methods) if methods else None, name=name)
        if inspect.isfunction(endpoint) or inspect.ismethod(endpoint):
            self.app = _lean(endpoint)  # type: ignore[arg-type]
        if exclusive:
            self.matches = self._matches_every_method  # type: ignore[method-assign]

    def _matches_every_method(self, scope: Scope) -> tuple[routing.Match, Scope]:
        match, child = routing.Route.matches(self, scope)
        return (routing.Match.FULL if match is routing.Match.PARTIAL else match), child
