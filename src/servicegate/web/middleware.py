"""Pure ASGI middlewares around every request: request id, body size limit, metrics and the
access log. None of them handles exceptions: Starlette's ServerErrorMiddleware and
ExceptionMiddleware do, with the handlers of web/errors.py."""

from __future__ import annotations

import random
import re
from time import perf_counter

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicegate.problems import Problem
from servicegate.web import metrics
from servicegate.web.problems import response_for

_SAFE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
access_log = structlog.get_logger("servicegate.access")


class RequestId:
    """Takes the caller's `X-Request-Id` when it is safe to echo, or makes one; keeps it in
    `scope["state"]["request_id"]` (problems quote it as `traceId`, upstreams receive it)
    and answers it in the response's `X-Request-Id`.

    A made id needs to be unique, not secret: 128 bits of the `random` module (reseeded in
    every forked worker), without the system call `secrets` makes for each one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:  # the last acceptable one: a proxy appends its own
            if name == b"x-request-id" and _SAFE_ID.fullmatch(value):
                request_id = value
        if request_id is None:
            request_id = b"%032x" % random.getrandbits(128)
        scope.setdefault("state", {})["request_id"] = request_id.decode("ascii")
        header = (b"x-request-id", request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"body over {limit} bytes")
        self.limit = limit


class BodyLimit:
    """Refuses a request body over `limit` bytes: at once (413, connection closed) when its
    Content-Length says so, otherwise (a chunked body) when the bytes received pass the
    limit, raising BodyTooLarge where the endpoint reads it. Starlette's own body limit
    middleware answers plain text; every error here is a problem."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for n, v in scope["headers"] if n == b"content-length"), None)
        if length is None:  # chunked or no body: count what arrives
            await self.app(scope, self._counted(receive), send)
            return
        if not length.isdigit() or int(length) > self.limit:
            problem = Problem(413, f"request body exceeds the limit of {self.limit} bytes",
                              headers={"Connection": "close"}, limit=self.limit)
            await response_for(Request(scope), problem)(scope, receive, send)
            return
        # The server delivers at most Content-Length bytes: nothing to count.
        await self.app(scope, receive, send)

    def _counted(self, receive: Receive) -> Receive:
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        return counted


class Observe:
    """Counts and times each request by route template, method and status; writes one access
    log line per request when that is on."""

    def __init__(self, app: ASGIApp, *, metrics_on: bool, access_log_on: bool) -> None:
        self.app = app
        self.metrics_on = metrics_on
        self.access_log_on = access_log_on

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500  # what a request that raised is counted as

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            self._record(scope, status, perf_counter() - started)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "<unmatched>"
        if self.metrics_on:
            metrics.observe(route, scope["method"], status, elapsed)
        if self.access_log_on:
            access_log.info("request", request_id=scope.get("state", {}).get("request_id"),
                            method=scope["method"], path=scope["path"], route=route,
                            status=status, ms=round(elapsed * 1000, 3))
