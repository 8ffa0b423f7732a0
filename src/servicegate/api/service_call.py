"""`/services/{name}[/{subPath}]`: one ASGI function from the matched name to the response.

No Starlette Request or Response objects on the way (web/asgi_io.py reads the body and sends
the answer), no route-by-route matching (`ServicesDispatch`), and no invocation context when
the action needs none of it (`Action.direct`). GatewayMiddleware calls `serve` directly, with
the request id header to append; as a route's app (the router's way) it is an ASGI app.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from servicegate.actions.invoke import invoke, timed_out
from servicegate.api.service_jobs import idempotency_key, submit
from servicegate.auth.scopes import SERVICES
from servicegate.runtime import Runtime
from servicegate.web.asgi_io import receive_body, send_response
from servicegate.web.dispatch import (
    check_input,
    check_method,
    count,
    rate_limit,
    respond,
    respond_constant,
)
from servicegate.web.guard import authenticate_scope, cached_principal, require_scopes
from servicegate.web.headermap import header_map
from servicegate.web.invocation import (
    async_flag,
    build_context,
    may_have_body,
    parse_body,
    query_pairs,
    stored_context,
    subpath_segments,
)
from servicegate.web.limits import limited_receive
from servicegate.web.problems import ProblemError, from_error

Trailer = tuple[tuple[bytes, bytes], ...]


class ServiceEndpoint:
    """The app of the `/services/{name}` and `/services/{name}/{subpath:path}` routes."""

    def __init__(self, depth: int) -> None:
        self.depth = depth  # path segments up to the name: the sub-path starts after them

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As a route's app: a ProblemError is answered here, as web/routing.py's routes do."""
        try:
            await self.serve(scope, receive, send, (), [0], None)
        except ProblemError as exc:
            response = from_error(Request(scope, receive, send), exc)
            await response(scope, receive, send)

    async def serve(self, scope: Scope, receive: Receive, send: Send, trailer: Trailer,
                    status_holder: list[int], body_limit: int | None) -> None:
        """Answer the request, `trailer` appended to the response headers, a body over
        `body_limit` bytes refused (BodyTooLarge). Anything raised is raised before the
        response starts unless `status_holder[0]` is set (to the status)."""
        runtime: Runtime = scope["app"].state["runtime"]  # (`runtime_of`, inlined)
        authenticator = runtime.authenticator
        principal = (cached_principal(scope, authenticator)
                     or await authenticate_scope(scope, authenticator))
        name = scope["path_params"]["name"]
        definition = runtime.definitions.get(name)
        if definition is None or "services" not in definition.expose:
            raise ProblemError(404, f"no service definition named {name!r}")
        # one frame from here to the response (every upstream answer resumes each frame)
        try:
            held = principal.scopes
            # the common case in one step: `services` or `services:<name>`, and the others
            if not ((SERVICES in held or definition.service_scopes[0] in held)
                    and held.issuperset(definition.scopes)):
                require_scopes(principal, *definition.service_scopes)
            method = scope["method"]
            if method not in definition.methods:
                check_method(definition, method)
            query = query_pairs(scope) if scope.get("query_string") else []
            run_async = False
            async_mode = definition.async_mode
            if query or async_mode == "always":
                run_async, query = async_flag(query)
                if run_async and async_mode == "forbidden":
                    raise ProblemError(400, f"definition {definition.name!r} does not allow "
                                       "asynchronous invocation", definition=definition.name)
            deferred = bool(run_async) or async_mode == "always"
            key = idempotency_key(scope) if deferred else None
            limit_headers = ({} if definition.limiter is None
                             else rate_limit(definition, principal.client_id))
            # `/services/{name}` (no sub-path parameter) has no raw segments after the name
            # either: decoding can only add slashes, never remove them.
            segments = (subpath_segments(scope, self.depth) if "subpath" in scope["path_params"]
                        else [])
            raw, body = b"", None
            by_name = header_map(scope)
            if (may_have_body(scope) if by_name is None else  # (inlined: the usual case)
                    by_name.get(b"content-length", b"0") != b"0"
                    or b"transfer-encoding" in by_name):
                if body_limit is not None:
                    receive = limited_receive(receive, body_limit)
                raw, body, _ = parse_body(await receive_body(receive), scope, definition,
                                          any_type=False)
            if definition.validator is not None:
                check_input(definition, body)
            action = definition.action
            bound = action.max_seconds
            if deferred:
                stored = stored_context(scope, definition, principal, segments, query, raw, body)
                response = await submit(scope, runtime, stored, principal, key, limit_headers)
            elif action.constant is not None:  # the same answer for everyone: no context
                response = respond_constant(action.constant, limit_headers)
            elif (action.direct is not None and by_name is not None and bound is not None
                  and bound <= definition.timeout):
                # as `invoke` runs it (no timer of its own needed), without the context
                try:
                    result = await action.direct(runtime, method, segments, query, by_name, raw,
                                                 scope["state"].get("request_id", ""))
                except TimeoutError:
                    raise timed_out(definition) from None
                response = respond(result, limit_headers)
            else:
                context = build_context(scope, definition, "services", principal, segments,
                                        query, raw, body, None)
                response = respond(await invoke(definition, context, runtime), limit_headers)
        except ProblemError as exc:
            count(name, "services", exc.status)
            raise
        count(name, "services", response.status_code)
        await send_response(send, response, trailer, status_holder)
