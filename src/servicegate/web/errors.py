"""Exception handlers: framework errors, our ProblemError and crashes become problem+json."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from servicegate.web.limits import BodyTooLarge
from servicegate.web.problems import ProblemError, from_error, problem_response

_DETAILS = {
    404: "no such resource",
    405: "method not allowed on this resource",
}


async def on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return from_error(request, exc)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.detail and exc.detail != _phrase_of(exc.status_code) else None
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        detail = f"{request.method} is not allowed here; allowed: {allow}"
    return problem_response(
        request,
        exc.status_code,
        detail or _DETAILS.get(exc.status_code, "request failed"),
        headers=dict(exc.headers or {}),
    )


def _phrase_of(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


async def on_body_too_large(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTooLarge)
    return problem_response(
        request, 413, f"request body exceeds the limit of {exc.limit} bytes", limit=exc.limit
    )


# Anything else is answered by GatewayMiddleware as a logged 500 problem with the traceId.
HANDLERS = {
    ProblemError: on_problem,
    HTTPException: on_http_exception,
    BodyTooLarge: on_body_too_large,
}
