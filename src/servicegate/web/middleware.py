"""One pure-ASGI middleware for the hot path: request id, body limit, metrics, access log."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from time import perf_counter

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicegate.web import headermap, metrics
from servicegate.web.limits import limited_receive
from servicegate.web.problems import MEDIA_TYPE, problem_body
from servicegate.web.responses import dumps

_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
# Generated ids: a random per-process prefix and a counter (unique across nodes, ~0.2 µs).
_ID_PREFIX = os.urandom(8).hex()
# Counting from 2**64 + 1: `hex(n)[3:]` is the counter as 16 hex digits ('0x1' dropped),
# cheaper than an `:016x` format.
_ID_COUNTER = itertools.count((1 << 64) + 1)
Handler = Callable[[Request, Exception], Awaitable[Response]]
# An app answering one request without the `send` and `receive` wrappers: it appends the
# given headers to its response start, puts the status into the list before sending it and
# refuses a body over the limit (BodyTooLarge).
Direct = Callable[[Scope, Receive, Send, tuple[tuple[bytes, bytes], ...], list[int], int],
                  Awaitable[None]]
access_log = structlog.get_logger("servicegate.access")
error_log = structlog.get_logger("servicegate.errors")


class GatewayMiddleware:
    """The only layer around the router (see `app.GatewayApp`).

    `direct(scope)` may name an app that answers the request without the `send` wrapper (the
    `/services/{name}` path, see api/services.py). It also does what Starlette's two default
    layers would: exceptions with a handler in
    `handlers` (matched along the exception's MRO, as Starlette's ExceptionMiddleware does)
    become that handler's response, any other one a logged 500 problem - unless the response
    has started, when the exception propagates to the server.
    """

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, metrics_on: bool, access_log_on: bool,
        handlers: Mapping[type[Exception], Handler] | None = None,
        direct: Callable[[Scope], Direct | None] | None = None,
    ) -> None:
        self.app = app
        self.direct = direct
        self.max_body_bytes = max_body_bytes
        self.metrics_on = metrics_on
        self.access_log_on = access_log_on
        self.handlers = {k: v for k, v in (handlers or {}).items() if k is not Exception}
        # what Starlette's request_response wrapper reads; kept for any plain Starlette route
        self.starlette_handlers = (self.handlers, {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        pairs = scope["headers"]
        by_name: dict[bytes, bytes] | None = dict(pairs)  # made once: see web/headermap.py
        if len(by_name) == len(pairs):  # type: ignore[arg-type]
            content_length = by_name.get(b"content-length")
            raw_id = by_name.get(b"x-request-id")
            if raw_id is not None and not _SAFE_ID.match(raw_id):
                raw_id = None
        else:  # a header name repeats: the last valid value of each counts
            by_name = raw_id = content_length = None
            for name, value in pairs:
                if name == b"x-request-id":
                    if _SAFE_ID.match(value):
                        raw_id = value
                elif name == b"content-length":
                    content_length = value
        scope[headermap.KEY] = by_name
        if raw_id is None:
            request_id = _ID_PREFIX + hex(next(_ID_COUNTER))[3:]
            raw_id = request_id.encode("ascii")
        else:
            request_id = raw_id.decode("ascii")
        scope.setdefault("state", {})["request_id"] = request_id
        rid_header = (b"x-request-id", raw_id)
        status_holder = [0]  # the answer's status once its start was sent

        if content_length is not None and _too_long(content_length, self.max_body_bytes):
            await self._reject_413(scope, _with_id(send, rid_header, status_holder), request_id)
        else:
            direct = self.direct(scope) if self.direct is not None else None
            try:
                if direct is not None:  # it appends the request id header itself
                    await direct(scope, receive, send, (rid_header,), status_holder,
                                 self.max_body_bytes)
                else:
                    scope["starlette.exception_handlers"] = self.starlette_handlers
                    await self.app(scope, limited_receive(receive, self.max_body_bytes),
                                   _with_id(send, rid_header, status_holder))
            except Exception as exc:
                if status_holder[0]:
                    raise
                send_with_id = _with_id(send, rid_header, status_holder)
                handler = self._handler(exc)
                if handler is None:
                    await self._crash(scope, send_with_id, request_id, exc)
                else:
                    response = await handler(Request(scope, receive, send_with_id), exc)
                    await response(scope, receive, send_with_id)
                    exc.__traceback__ = None  # reused exception instances keep no tracebacks

        elapsed = perf_counter() - started
        status = status_holder[0] or 500
        route = scope.get("route")
        template = getattr(route, "path", None) or "<unmatched>"
        if self.metrics_on:
            metrics.observe(template, scope["method"], status, elapsed)
        if self.access_log_on:
            access_log.info(
                "request",
                request_id=request_id,
                method=scope["method"],
                path=scope["path"],
                route=template,
                status=status,
                ms=round(elapsed * 1000, 3),
            )

    def _handler(self, exc: Exception) -> Handler | None:
        for cls in type(exc).__mro__:
            handler = self.handlers.get(cls)
            if handler is not None:
                return handler
        return None

    async def _reject_413(self, scope: Scope, send: Send, request_id: str) -> None:
        body = problem_body(
            413,
            f"request body exceeds the limit of {self.max_body_bytes} bytes",
            instance=scope["path"],
            trace_id=request_id,
            limit=self.max_body_bytes,
        )
        await _send_problem(send, 413, body, close=True)

    async def _crash(self, scope: Scope, send: Send, request_id: str, exc: Exception) -> None:
        error_log.error(
            "unhandled_error",
            trace_id=request_id,
            method=scope["method"],
            path=scope["path"],
            exc_info=exc,
        )
        body = problem_body(
            500,
            "the gateway failed to handle this request; quote the traceId",
            instance=scope["path"],
            trace_id=request_id,
        )
        await _send_problem(send, 500, body)


def _with_id(send: Send, rid_header: tuple[bytes, bytes], status_holder: list[int]) -> Send:
    """`send` appending the request id header to the response start, noting its status."""

    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            status_holder[0] = message["status"]
            message["headers"] = [*message.get("headers", ()), rid_header]
        await send(message)

    return send_with_id


async def _send_problem(send: Send, status: int, body: dict, *, close: bool = False) -> None:
    raw = dumps(body)
    headers = [
        (b"content-type", MEDIA_TYPE.encode()),
        (b"content-length", str(len(raw)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


def _too_long(raw: bytes, limit: int) -> bool:
    try:
        return int(raw) > limit
    except ValueError:
        return True
