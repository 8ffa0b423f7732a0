"""RFC 9457 problem details: the error answer any layer may raise, and the body it becomes.

Plain data, no HTTP framework. An action refuses a request with a `Problem` (the status is
part of the answer a definition gives), the web layer renders it as
`application/problem+json`, and the job worker stores its body as a failed job's `error`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

PROBLEM_TYPE_BASE = "https://servicegate.dev/problems/"

_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    408: "request-timeout",
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


class Problem(Exception):
    """An answer that refuses the request: a status, a detail safe to show the caller, and
    RFC 9457 extension members (`errors`, `definition`, ...)."""

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

    def body(self, *, instance: str, trace_id: str | None = None) -> dict[str, Any]:
        return problem_body(self.status, self.detail, instance=instance, title=self.title,
                            type_=self.type_, trace_id=trace_id, **self.extensions)


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
