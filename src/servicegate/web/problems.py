"""RFC 9457 problem details: every error the gateway answers goes through here."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from servicegate.web.responses import dumps

PROBLEM_TYPE_BASE = "https://servicegate.dev/problems/"
MEDIA_TYPE = "application/problem+json"

_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "unprocessable-content",
    429: "rate-limited",
    500: "internal-error",
    502: "bad-gateway",
    503: "unavailable",
    504: "gateway-timeout",
}


class ProblemError(Exception):
    """Raise anywhere while handling a request; answered as problem+json."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title
        self.type_ = type_
        self.headers = headers
        self.extensions = extensions


def problem_type(slug: str) -> str:
    return PROBLEM_TYPE_BASE + slug


def problem_body(
    status: int,
    detail: str,
    *,
    instance: str,
    title: str | None = None,
    type_: str | None = None,
    trace_id: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": type_ or problem_type(_SLUGS.get(status, str(status))),
        "title": title or _phrase(status),
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update(extensions)
    if trace_id:
        body["traceId"] = trace_id
    return body


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> Response:
    trace_id = request.scope.get("state", {}).get("request_id")
    body = problem_body(status, detail, instance=request.url.path, trace_id=trace_id, **kwargs)
    return Response(dumps(body), status_code=status, headers=headers, media_type=MEDIA_TYPE)


def from_error(request: Request, exc: ProblemError) -> Response:
    return problem_response(
        request,
        exc.status,
        exc.detail,
        headers=exc.headers,
        title=exc.title,
        type_=exc.type_,
        **exc.extensions,
    )
