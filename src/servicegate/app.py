"""The ASGI application: routes of every API group, middleware, error handlers, lifespan."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from servicegate import logs
from servicegate.api import (
    admin_clients,
    admin_identities,
    admin_webhooks,
    callback,
    events,
    health,
    identity,
    jobs,
    metrics,
    oauth,
    openapi,
    ping,
    services,
    webhook_deliveries,
    webhooks,
)
from servicegate.config import Settings, load_settings
from servicegate.runtime import Runtime
from servicegate.web import metrics as request_metrics
from servicegate.web.errors import HANDLERS
from servicegate.web.middleware import GatewayMiddleware
from servicegate.web.routing import Route

YOUNG_COLLECTION_EVERY = 20_000  # container allocations (CPython's default: 700)
log = structlog.get_logger("servicegate.app")


def _prefixed(routes: list[BaseRoute], base: str) -> list[BaseRoute]:
    if not base:
        return routes
    out: list[BaseRoute] = []
    for route in routes:
        assert isinstance(route, Route)
        out.append(Route(base + route.path, route.endpoint, methods=sorted(route.methods or ())))
    return out


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> GatewayApp:
    """Build the gateway. `servicegate serve` calls this in each worker process."""
    settings = settings or load_settings()
    logs.configure(settings.logging.level, settings.logging.format)

    modules = [ping, identity, jobs, health, oauth, admin_clients, admin_identities, services,
               callback, webhooks, webhook_deliveries, events, admin_webhooks, metrics]
    document = openapi.build_document([m.OPENAPI for m in modules], settings.server.base_path)
    routes: list[BaseRoute] = [
        # Fixed /services/* routes (ping, identity, jobs) must come before the definition
        # routes, which match any name; everything else may follow them.
        # Routes are tried in order: the hot /services ones go first.
        ping.route("services"),
        *identity.routes(),
        *jobs.routes(),
        *services.routes(settings.server.base_path),
        ping.route("callback"),
        *callback.routes(),
        ping.route("webhooks"),
        *health.routes(),
        *oauth.routes(),
        *admin_clients.routes(),
        *admin_identities.routes(),
        *webhooks.routes(),
        *webhook_deliveries.routes(),
        *events.routes(),
        *admin_webhooks.routes(),
        *metrics.routes(settings.metrics.enabled),
        *openapi.routes(document),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        rt = runtime or await Runtime.start(settings)
        app.state.runtime = rt
        if runtime is None:
            await rt.start_background()
        # Start-up objects (settings, compiled definitions, modules) never become garbage:
        # keep them out of the collector's way so collections under load stay short. And
        # collect the young generation less often: requests in flight hold thousands of
        # containers, which every collection walks again (CPython's 700 allocations between
        # collections cost 7 % of the event loop's time at 15k async submissions/s).
        gc.collect()
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(max(thresholds[0], YOUNG_COLLECTION_EVERY), *thresholds[1:])
        log.info("started", base_path=settings.server.base_path or "/")
        try:
            yield {}
        finally:
            request_metrics.flush()  # multiprocess mode: what this worker counted last
            gc.set_threshold(*thresholds)
            if runtime is None:
                await rt.stop()
            log.info("stopped")

    app = GatewayApp(
        routes=_prefixed(routes, settings.server.base_path),
        exception_handlers=HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.base_path = settings.server.base_path
    app.gateway_options = {
        "max_body_bytes": settings.limits.max_body_bytes,
        "metrics_on": settings.metrics.enabled,
        "access_log_on": settings.logging.access_log,
    }
    return app


class GatewayApp(Starlette):
    """Starlette with GatewayMiddleware as the one layer around the router.

    Starlette would wrap it in ServerErrorMiddleware and ExceptionMiddleware; GatewayMiddleware
    answers exceptions itself (the same handlers, then a logged 500), so those two layers only
    cost every request two frames and two `send` wrappers.
    """

    gateway_options: dict[str, Any]
    base_path = ""

    def build_middleware_stack(self) -> ASGIApp:
        # `/services/{name}` skips the router's route-by-route matching (see ServicesDispatch)
        dispatch = services.ServicesDispatch(self.router, self.base_path)
        return GatewayMiddleware(dispatch, handlers=self.exception_handlers,  # type: ignore[arg-type]
                                 direct=dispatch.direct, **self.gateway_options)
