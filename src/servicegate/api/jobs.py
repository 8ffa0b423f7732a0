"""/services/jobs: the caller's asynchronous jobs (list, status, cancel).

A job belongs to the client that submitted it: anyone else gets 404, exactly as for an id
that does not exist. Submission itself is `?async=true` on /services/{name} (api/services.py).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from servicegate.api.guard import authenticate
from servicegate.api.state import runtime_of
from servicegate.auth.principal import Principal
from servicegate.auth.scopes import SERVICES
from servicegate.jobs.store import STATUSES, NoSuchJob, NotCancellable, retry_after, view
from servicegate.problems import Problem
from servicegate.web import listing
from servicegate.web.responses import JSONResponse

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_QUERY = {"status", "cursor", "limit"}
_MAX_ID = 64


async def _caller(request: Request) -> Principal:
    """Any client that may call services (all of them or some) may see its own jobs."""
    principal = await authenticate(request)
    if not any(s == SERVICES or s.startswith(SERVICES + ":") for s in principal.scopes):
        raise Problem(403, "this client lacks the scope services (or services:<name>)",
                           missingScopes=[SERVICES])
    return principal


def _not_allowed(request: Request, allow: str) -> Problem:
    return Problem(405, f"{request.method} is not allowed here; allowed: {allow}",
                        headers={"Allow": allow})


async def collection(request: Request) -> Response:
    if request.method != "GET":
        raise _not_allowed(request, "GET")
    principal = await _caller(request)
    q = request.query_params
    listing.known_only(q, _QUERY)
    status = listing.one_of(q, "status", STATUSES)
    limit = listing.limit(q, default=25, maximum=100)
    cursor = listing.cursor(q, "job_", _MAX_ID)
    page = await runtime_of(request).jobs.store.page(principal.client_id, status=status,
                                                      cursor=cursor, limit=limit)
    return JSONResponse({"count": len(page.items), "jobs": page.items, "next": page.next_cursor})


async def item(request: Request) -> Response:
    if request.method not in ("GET", "DELETE"):
        raise _not_allowed(request, "GET, DELETE")
    principal = await _caller(request)
    runtime = runtime_of(request)
    job_id = request.path_params["job_id"]
    try:
        if len(job_id) > _MAX_ID:
            raise NoSuchJob(job_id)
        if request.method == "DELETE":
            row = await runtime.jobs.store.cancel(principal.client_id, job_id)
        else:
            row = await runtime.jobs.store.get(principal.client_id, job_id)
    except NoSuchJob:
        raise Problem(404, "you have no such job", jobId=job_id[:_MAX_ID]) from None
    except NotCancellable as exc:
        raise Problem(409, f"the job is {exc.status}; only a queued job can be cancelled",
                           jobId=job_id, jobStatus=exc.status) from None
    wait = retry_after(row, runtime.settings.jobs.poll_after)
    headers = {"Retry-After": str(wait)} if wait is not None else None
    return JSONResponse(view(row), headers=headers)


def routes() -> list[Route]:
    return [
        Route("/services/jobs", collection, methods=METHODS),
        Route("/services/jobs/{job_id}", item, methods=METHODS, name="job"),
    ]


_JOB = {
    "type": "object",
    "properties": {
        "jobId": {"type": "string"},
        "service": {"type": "string"},
        "status": {"type": "string", "enum": list(STATUSES)},
        "createdAt": {"type": "string", "format": "date-time"},
        "startedAt": {"type": ["string", "null"], "format": "date-time"},
        "finishedAt": {"type": ["string", "null"], "format": "date-time"},
        "attempts": {"type": "integer"},
        "result": {"type": ["object", "null"],
                   "properties": {"status": {"type": "integer"}, "body": {}}},
        "error": {"type": ["object", "null"], "description": "A problem object (RFC 9457)"},
    },
}
_PROBLEM = {"$ref": "#/components/responses/Problem"}
_JOB_ID = {"name": "jobId", "in": "path", "required": True, "schema": {"type": "string"}}
_OK = {"description": "The job", "content": {"application/json": {"schema": _JOB}},
       "headers": {"Retry-After": {"description": "While not finished: seconds to wait",
                                   "schema": {"type": "integer"}}}}

OPENAPI = {
    "/services/jobs": {"get": {
        "operationId": "listJobs",
        "tags": ["Services"], "summary": "The caller's asynchronous jobs, newest first",
        "security": [{"oauth2apikey": []}],
        "parameters": [
            {"name": "status", "in": "query", "schema": {"type": "string",
                                                         "enum": list(STATUSES)}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                        "maximum": 100, "default": 25}},
            {"name": "cursor", "in": "query", "schema": {"type": "string"},
             "description": "The `next` value of the previous page"},
        ],
        "responses": {"200": {"description": "A page of jobs", "content": {"application/json": {
            "schema": {"type": "object", "properties": {
                "count": {"type": "integer"}, "jobs": {"type": "array", "items": _JOB},
                "next": {"type": ["string", "null"]}}}}}},
            "400": _PROBLEM, "401": {"$ref": "#/components/responses/Unauthorized"},
            "403": _PROBLEM},
    }},
    "/services/jobs/{jobId}": {
        "get": {"operationId": "getJob",
                "tags": ["Services"], "summary": "An asynchronous job's status and result",
                "security": [{"oauth2apikey": []}], "parameters": [_JOB_ID],
                "responses": {"200": _OK, "401": {"$ref": "#/components/responses/Unauthorized"},
                              "404": _PROBLEM}},
        "delete": {"operationId": "cancelJob",
                   "tags": ["Services"], "summary": "Cancel a job that has not started",
                   "security": [{"oauth2apikey": []}], "parameters": [_JOB_ID],
                   "responses": {"200": _OK, "401": {"$ref": "#/components/responses/Unauthorized"},
                                 "404": _PROBLEM, "409": _PROBLEM}},
    },
}
