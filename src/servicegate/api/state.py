"""The running gateway's services, as an endpoint reaches them."""

from __future__ import annotations

from starlette.requests import Request

from servicegate.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    """The runtime `create_app` (or its lifespan) put on the application's state. (Read as
    an item: `State`'s attribute access runs only after the normal lookup failed, raising and
    dropping an AttributeError on every request.)"""
    runtime: Runtime = request.app.state["runtime"]
    return runtime
