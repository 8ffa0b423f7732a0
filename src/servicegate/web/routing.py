"""Routes that own their path for every method."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette import routing
from starlette.types import Scope


class Route(routing.Route):
    """Starlette's Route. `exclusive`: the path is this route's whatever the method, so another
    method is answered 405 (with `Allow`) here. Otherwise the router lets a later route with a
    parameter take it: `POST /services/ping` would reach the definitions route and be answered
    404 "no service definition named 'ping'"."""

    def __init__(self, path: str, endpoint: Callable[..., Any], *,
                 methods: Sequence[str] | None = None, name: str | None = None,
                 exclusive: bool = False) -> None:
        super().__init__(path, endpoint, methods=list(methods) if methods else None, name=name)
        self.exclusive = exclusive

    def matches(self, scope: Scope) -> tuple[routing.Match, Scope]:
        match, child = super().matches(scope)
        if self.exclusive and match is routing.Match.PARTIAL:
            return routing.Match.FULL, child
        return match, child
