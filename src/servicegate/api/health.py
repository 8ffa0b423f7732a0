"""GET /healthz (the process answers) and GET /readyz (database and background workers)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from servicegate.api.state import runtime_of
from servicegate.web.problems import problem_response
from servicegate.web.responses import JSONResponse


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    runtime = runtime_of(request)
    database = await runtime.check_database()
    dead = runtime.dead_workers()
    checks = {
        "database": "ok" if database else "unreachable",
        "workers": "ok" if not dead else "stopped: " + ", ".join(dead),
    }
    if database and not dead:
        return JSONResponse({"status": "ready", "checks": checks})
    return problem_response(request, 503, "the gateway is not ready", checks=checks)


def routes() -> list[Route]:
    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]


_STATUS = {"type": "object", "properties": {"status": {"type": "string"}}}
OPENAPI = {
    "/healthz": {"get": {"operationId": "getLiveness",
                         "tags": ["Operations"], "summary": "Liveness (no auth)",
                         "security": [],
                         "responses": {"200": {"description": "The process answers", "content": {
                             "application/json": {"schema": _STATUS}}}}}},
    "/readyz": {"get": {"operationId": "getReadiness",
                        "tags": ["Operations"], "summary": "Readiness (no auth)",
                        "security": [],
                        "responses": {"200": {"description": "Database and workers are up",
                                              "content": {"application/json": {"schema": {
                                                  **_STATUS, "properties": {
                                                      **_STATUS["properties"],
                                                      "checks": {"type": "object"}}}}}},
                                      "503": {"$ref": "#/components/responses/Problem"}}}},
}
