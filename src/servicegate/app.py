"""The ASGI application: routes of every API group, middleware, error handlers, lifespan."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount

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
from servicegate.runtime import Runtime, settle_heap
from servicegate.web.errors import HANDLERS
from servicegate.web.middleware import RequestContext

log = structlog.get_logger("servicegate.app")


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Starlette:
    """Build the gateway. `servicegate serve` calls this in each worker process; a test may
    pass a `runtime` it started itself (the app then neither starts nor stops it)."""
    settings = settings or load_settings()
    logs.configure(settings.logging.level, settings.logging.format)

    modules = [ping, identity, jobs, health, oauth, admin_clients, admin_identities, services,
               callback, webhooks, webhook_deliveries, events, admin_webhooks, metrics]
    base = settings.server.base_path
    document = openapi.build_document([m.OPENAPI for m in modules], base)
    routes: list[BaseRoute] = [
        # Routes are tried in order: the busiest first. The definition routes never take a
        # reserved name (`{name:definition}`), so the fixed ones below keep their paths.
        *services.routes(),
        *callback.routes(),
        *ping.routes(),
        *identity.routes(),
        *jobs.routes(),
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
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started = runtime is None
        app.state.runtime = rt = runtime or await Runtime.start(settings)
        if started:
            await rt.start_background()
        thresholds = settle_heap()
        log.info("started", base_path=base or "/")
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            if started:
                await rt.stop()
            log.info("stopped")

    app = Starlette(
        routes=[*oauth.root_routes(base), Mount(base, routes=routes)] if base else routes,
        middleware=[Middleware(RequestContext, max_body_bytes=settings.limits.max_body_bytes,
                               max_json_depth=settings.limits.max_json_depth,
                               body_read_timeout=settings.limits.body_read_timeout,
                               metrics_on=settings.metrics.enabled,
                               access_log_on=settings.logging.access_log)],
        exception_handlers=HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    if runtime is not None:
        app.state.runtime = runtime
    return app
