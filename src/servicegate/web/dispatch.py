"""Steps the services and callback endpoints share around `invoke`: limits, input, the answer."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from servicegate.actions.base import ActionResult
from servicegate.definitions.compiled import CompiledDefinition
from servicegate.web.metrics import count_definition
from servicegate.web.problems import ProblemError
from servicegate.web.responses import EMPTY_OBJECT, dumps

_NO_BODY = frozenset({204, 304})

count = count_definition  # requests answered per definition (see web/metrics.py)


def check_method(definition: CompiledDefinition, method: str) -> None:
    if method not in definition.methods:
        raise ProblemError(405, f"{method} is not allowed by definition {definition.name!r}; "
                           f"allowed: {definition.allow}", headers={"Allow": definition.allow},
                           definition=definition.name)


def rate_limit(definition: CompiledDefinition, key: str) -> dict[str, str]:
    """The RateLimit-* headers for this answer; raise 429 when the bucket is empty."""
    if definition.limiter is None:
        return {}
    decision = definition.limiter.take(key)
    headers = decision.headers()
    if not decision.allowed:
        raise ProblemError(429, f"rate limit of definition {definition.name!r} exceeded; retry "
                           f"in {decision.retry_after}s", headers=headers,
                           definition=definition.name)
    return headers


def check_input(definition: CompiledDefinition, body: Any) -> None:
    if definition.validator is None:
        return
    errors = definition.input_errors(body)
    if errors:
        raise ProblemError(
            400, f"the request body does not match the input schema of {definition.name!r} "
            f"({len(errors)} error{'s' if len(errors) > 1 else ''})",
            title="Validation failed", errors=errors, definition=definition.name)


# Responses of constant results (`Action.constant`), built once: keyed by the result's id,
# holding the result so that id is not reused while cached; cleared when definitions churn.
_constant_responses: dict[int, tuple[ActionResult, Response]] = {}


def respond_constant(result: ActionResult, extra_headers: dict[str, str]) -> Response:
    """`respond` for a result that is the same on every request: its response is reused."""
    if extra_headers:
        return respond(result, extra_headers)
    cached = _constant_responses.get(id(result))
    if cached is not None and cached[0] is result:
        return cached[1]
    response = respond(result, extra_headers)
    if len(_constant_responses) >= 1024:
        _constant_responses.clear()
    _constant_responses[id(result)] = (result, response)
    return response


def respond(result: ActionResult, extra_headers: dict[str, str]) -> Response:
    headers = {**result.headers, **extra_headers} if extra_headers else result.headers
    if result.status in _NO_BODY:
        return Response(status_code=result.status, headers=headers)
    if result.raw is not None:
        return RawResponse(result.raw, result.status, headers,
                           result.media_type or "application/octet-stream")
    body = EMPTY_OBJECT if result.body is None else dumps(result.body)
    return Response(body, status_code=result.status, headers=headers,
                    media_type="application/json")


class RawResponse(Response):
    """Starlette's `Response(body, status, headers, media_type)` built in one pass.

    The same status, body and raw headers (names lowercased, latin-1; content-length, then
    content-type with `charset=utf-8` added to text/*) without Starlette's generic checks;
    headers that already hold a length or type take Starlette's own way.
    """

    def __init__(self, body: bytes, status: int, headers: dict[str, str], media_type: str) -> None:
        raw: list[tuple[bytes, bytes]] = []
        if headers:
            raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
            for name, _ in raw:
                if name == b"content-length" or name == b"content-type":
                    super().__init__(body, status, headers, media_type)
                    return
        self._finish(body, status, raw, media_type)

    @classmethod
    def from_raw(cls, body: bytes, status: int, raw: list[tuple[bytes, bytes]],
                 media_type: str) -> RawResponse:
        """The same, from headers already in ASGI form (lowercase latin-1 names, neither a
        length nor a type among them): appended to `raw`, which the response keeps."""
        response = cls.__new__(cls)
        response._finish(body, status, raw, media_type)
        return response

    def _finish(self, body: bytes, status: int, raw: list[tuple[bytes, bytes]],
                media_type: str) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        self.media_type = media_type
        raw.append((b"content-length", str(len(body)).encode("latin-1")))
        try:
            raw.append(_content_types[media_type])
        except KeyError:
            raw.append(_content_type(media_type))
        self.raw_headers = raw


# The content-type header of each media type seen (upstreams send a handful).
_content_types: dict[str, tuple[bytes, bytes]] = {}


def _content_type(media_type: str) -> tuple[bytes, bytes]:
    value = media_type
    if media_type.startswith("text/") and "charset=" not in media_type.lower():
        value += "; charset=utf-8"
    if len(_content_types) >= 1024:
        _content_types.clear()
    header = _content_types[media_type] = (b"content-type", value.encode("latin-1"))
    return header

