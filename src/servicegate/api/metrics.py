"""GET /metrics: Prometheus exposition (optionally admin-only, or turned off)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from servicegate.api.guard import authorize
from servicegate.api.state import runtime_of
from servicegate.auth.scopes import ADMIN


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


async def metrics(request: Request) -> Response:
    if runtime_of(request).settings.metrics.require_admin:
        await authorize(request, ADMIN)
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)


def routes(enabled: bool) -> list[Route]:
    return [Route("/metrics", metrics, methods=["GET"])] if enabled else []


OPENAPI = {
    "/metrics": {"get": {"operationId": "getMetrics", "tags": ["Operations"], "summary": "Prometheus metrics",
                         "security": [],
                         "responses": {"200": {"description": "text exposition format", "content": {
                             "text/plain": {"schema": {"type": "string"}}}},
                             "404": {"$ref": "#/components/responses/Problem"}}}},
}
