"""The pure ASGI middleware around every request: request id, body size limit, metrics and
the access log. It handles no exception: Starlette's ServerErrorMiddleware and
ExceptionMiddleware do, with the handlers of web/errors.py."""

from __future__ import annotations

import asyncio
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


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"body over {limit} bytes")
        self.limit = limit


class BodyTimeout(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"body not received within {seconds:g}s")
        self.seconds = seconds


class RequestContext:
    """What the gateway does around every request, in one layer (each ASGI layer costs every
    request a frame and a `send` wrapper; bench/RESULTS.md's decision log has the figures):

    - the request id: the caller's `X-Request-Id` when it is safe to echo (the last one, as a
      proxy appends its own), or a new one; kept in `scope["state"]["request_id"]` (problems
      quote it as `traceId`, upstreams receive it) and answered in `X-Request-Id`. A new id
      needs to be unique, not secret: 128 bits of the `random` module (reseeded in every
      forked worker), without the system call `secrets` makes for each one;
    - the body limit: a Content-Length over it is answered 413 at once (connection closed);
      a chunked body is counted as it arrives, raising BodyTooLarge where the endpoint reads
      it (Starlette's own body limit middleware answers plain text, not a problem);
    - the JSON nesting limit, kept in the request's state for `web.bodies` to check;
    - the body read timeout: a body must arrive within `body_read_timeout` of its first read,
      or BodyTimeout is raised where the endpoint reads it (answered 408): a client that
      sends less than its Content-Length would otherwise hold the connection and the
      endpoint as long as it likes;
    - metrics and the access log line, by route template, method and status.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics_on: bool,
                 access_log_on: bool, max_json_depth: int = 64,
                 body_read_timeout: float = 10.0) -> None:
        self.app = app
        self.limit = max_body_bytes
        self.max_json_depth = max_json_depth
        self.body_timeout = body_read_timeout
        self.metrics_on = metrics_on
        self.access_log_on = access_log_on

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        request_id = length = None
        for name, value in scope["headers"]:
            if name == b"x-request-id" and _SAFE_ID.fullmatch(value):
                request_id = value
            elif name == b"content-length":
                length = value
        if request_id is None:
            request_id = b"%032x" % random.getrandbits(128)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id.decode("ascii")
        state["max_json_depth"] = self.max_json_depth  # read where bodies are parsed
        header = (b"x-request-id", request_id)
        status = 500  # what a request that raised is counted as

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            if length is None:  # chunked, or no body at all
                await self.app(scope, self._guarded(receive, counted=True), send_with_id)
            elif length == b"0":
                await self.app(scope, receive, send_with_id)
            elif length.isdigit() and int(length) <= self.limit:
                # the server stops at its length; only its time is bounded here
                await self.app(scope, self._guarded(receive, counted=False), send_with_id)
            else:
                problem = Problem(413, f"request body exceeds the limit of {self.limit} bytes",
                                  headers={"Connection": "close"}, limit=self.limit)
                await response_for(Request(scope), problem)(scope, receive, send_with_id)
        finally:
            self._record(scope, status, perf_counter() - started)

    def _guarded(self, receive: Receive, *, counted: bool) -> Receive:
        """`receive` with the body's deadline (and its size counted, for a chunked body);
        once the body is complete, a later `receive` (waiting for a disconnect) is the
        server's own."""
        received = 0
        deadline: float | None = None
        complete = False

        async def guarded() -> Message:
            nonlocal received, deadline, complete
            if complete:
                return await receive()
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + self.body_timeout
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(self.body_timeout) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            if counted and message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        return guarded

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "<unmatched>"
        if self.metrics_on:
            metrics.observe(route, scope["method"], status, elapsed)
        if self.access_log_on:
            access_log.info("request", request_id=scope.get("state", {}).get("request_id"),
                            method=scope["method"], path=scope["path"], route=route,
                            status=status, ms=round(elapsed * 1000, 3))
