"""Exception handlers: problems, framework errors and crashes become problem+json.

`Starlette(exception_handlers=HANDLERS)` gives the `Exception` handler to its outermost
ServerErrorMiddleware and the others to its ExceptionMiddleware."""

from __future__ import annotations

from http import HTTPStatus

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from servicegate.problems import Problem
from servicegate.web.middleware import BodyTimeout, BodyTooLarge
from servicegate.web.problems import problem_response, request_id, response_for

error_log = structlog.get_logger("servicegate.errors")
_DETAILS = {
    404: "no such resource",
    405: "method not allowed on this resource",
}


async def on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return response_for(request, exc)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.detail and exc.detail != _phrase(exc.status_code) else None
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        detail = f"{request.method} is not allowed here; allowed: {allow}"
    return problem_response(request, exc.status_code,
                            detail or _DETAILS.get(exc.status_code, "request failed"),
                            headers=dict(exc.headers or {}))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


async def on_body_too_large(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTooLarge)
    return problem_response(request, 413, f"request body exceeds the limit of {exc.limit} bytes",
                            limit=exc.limit)


async def on_body_timeout(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTimeout)
    return problem_response(request, 408, f"the request body did not arrive within "
                            f"{exc.seconds:g}s", headers={"Connection": "close"})


async def on_client_disconnect(request: Request, exc: Exception) -> Response:
    """The server ended the body early: its chunked encoding is malformed, or the client
    went away (then nobody reads this answer)."""
    return problem_response(request, 400, "the request body could not be read: its chunked "
                            "encoding is malformed or the connection ended",
                            headers={"Connection": "close"})


async def on_crash(request: Request, exc: Exception) -> Response:
    """A logged 500 without internals. Sent by ServerErrorMiddleware, outside the request id
    middleware, so it names the request id itself."""
    trace_id = request_id(request)
    error_log.error("unhandled_error", trace_id=trace_id, method=request.method,
                    path=request.url.path, exc_info=exc)
    headers = {"X-Request-Id": trace_id} if trace_id else None
    return problem_response(request, 500, "the gateway failed to handle this request; quote "
                            "the traceId", headers=headers)


HANDLERS = {
    Problem: on_problem,
    HTTPException: on_http_exception,
    BodyTooLarge: on_body_too_large,
    BodyTimeout: on_body_timeout,
    ClientDisconnect: on_client_disconnect,
    Exception: on_crash,
}
