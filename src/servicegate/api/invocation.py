"""One invocation pipeline for `/services/{name}[/{subPath}]` and `/callback/{name}`,
answered at once or stored as a job (`?async=true`).

Every step reads the request once: who calls, which definition, the method, the sub-path,
the query, the captured headers and the body become one `InvocationContext`, which either
`invoke` runs now or the job store keeps for a worker to run the same way.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import parse_qsl

import structlog
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from servicegate.actions.base import ActionResult
from servicegate.actions.context import InvocationContext
from servicegate.actions.subpath import UnsafePath, split_raw
from servicegate.api.guard import authenticate, require_scopes
from servicegate.api.state import runtime_of
from servicegate.auth.principal import Principal
from servicegate.auth.scopes import CALLBACK
from servicegate.definitions.compiled import CompiledDefinition
from servicegate.definitions.invoke import invoke
from servicegate.definitions.models import RESERVED_NAMES
from servicegate.jobs.store import IdempotencyMismatch
from servicegate.problems import Problem
from servicegate.runtime import Runtime
from servicegate.signatures import SignatureInvalid, SignatureUnavailable
from servicegate.web.bodies import max_depth_of, parse_json
from servicegate.web.metrics import count_definition
from servicegate.web.responses import JSONResponse, dumps

Via = Literal["services", "callback"]
MAX_IDEMPOTENCY_KEY = 255
_NO_BODY = frozenset({204, 304})
_TRUE, _FALSE = ("true", "1"), ("false", "0")
log = structlog.get_logger("servicegate.invocation")


class DefinitionName(Convertor[str]):
    """`{name:definition}`: one path segment that is not a reserved name. The definition
    routes, the busiest, may then come first in the route list without taking
    `/services/ping`, `/services/identity` or `/services/jobs/...` from their own routes."""

    regex = "(?!(?:" + "|".join(sorted(RESERVED_NAMES)) + ")(?:/|$))[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("definition", DefinitionName())


class DefinitionEndpoint:
    """The ASGI endpoint of the definition routes (`/services/...`, `/callback/{name}`): the
    busiest routes answer without Starlette's per-route wrapper; a raised problem reaches the
    application's exception handlers as from any route."""

    def __init__(self, via: Via) -> None:
        self.via = via

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await call_definition(Request(scope, receive), self.via)
        await response(scope, receive, send)


async def call_definition(request: Request, via: Via) -> Response:
    """Answer a request to a definition; count it by definition and status."""
    runtime = runtime_of(request)
    name = request.path_params["name"]
    definition = runtime.definitions.get(name)
    principal = await _caller(request, runtime, definition, via)
    if definition is None or via not in definition.expose:
        what = "service definition" if via == "services" else "callback"
        raise Problem(404, f"no {what} named {name!r}")
    try:
        response = await _answer(request, runtime, definition, via, principal)
    except Problem as exc:
        count_definition(name, via, exc.status)
        raise
    count_definition(name, via, response.status_code)
    return response


async def _caller(request: Request, runtime: Runtime, definition: CompiledDefinition | None,
                  via: Via) -> Principal | None:
    """The authenticated caller; a callback whose definition does not require credentials
    authenticates only a caller that sends some."""
    mode = definition.auth_mode if definition is not None and via == "callback" else "required"
    if mode == "required" or (mode == "optional" and ("x-api-key" in request.headers
                                                      or "authorization" in request.headers)):
        return await authenticate(request, runtime)
    return None


async def _answer(request: Request, runtime: Runtime, definition: CompiledDefinition, via: Via,
                  principal: Principal | None) -> Response:
    if principal is not None and (via == "services" or definition.auth_mode == "required"):
        require_scopes(principal, *(definition.service_scopes if via == "services"
                                    else (CALLBACK, *definition.scopes)))
    if request.method not in definition.methods:
        raise Problem(405, f"{request.method} is not allowed by definition {definition.name!r}; "
                      f"allowed: {definition.allow}", headers={"Allow": definition.allow},
                      definition=definition.name)
    headers, captured = _headers(request, definition)
    query = request.query_params.multi_items() if request.scope["query_string"] else []
    run_async = False
    if via == "services":
        run_async, query = _async_flag(query, definition)
    key = idempotency_key(headers) if run_async else None
    # before reading the body: floods of bad signatures are limited too
    client = principal.client_id if principal else f"ip:{_client_ip(request)}"
    limit_headers = rate_limit(definition, client)
    segments = _subpath(request) if "subpath" in request.path_params else []
    # A body is read only when there is one: the server's receive is a round trip to its I/O
    # even when nothing comes.
    length = headers.get("content-length")
    has_body = (length is not None and length != "0") or "transfer-encoding" in headers
    raw, body, form = _parsed_body(await request.body() if has_body else b"",
                                   headers.get("content-type"), definition,
                                   any_type=via == "callback", max_depth=max_depth_of(request))
    if definition.verifier is not None:
        _verify(definition, raw, request)
    if definition.validator is not None:
        _check_input(definition, body)
    context = InvocationContext(  # positional, in the fields' order: keywords cost twice
        definition.name, via, request.method, segments, query, captured, body, raw,
        headers.get("content-type"), form, principal.as_context() if principal else None,
        request.scope.get("state", {}).get("request_id", ""))
    if run_async:
        assert principal is not None
        return await _submit(request, headers, runtime, context, principal, key, limit_headers)
    return respond(await invoke(definition, context, runtime), limit_headers)


def _async_flag(query: list[tuple[str, str]], definition: CompiledDefinition
                ) -> tuple[bool, list[tuple[str, str]]]:
    """Whether to run as a job, and the query without `async` (the rest is the action's)."""
    flag: bool | None = None
    rest = []
    for name, value in query:
        if name != "async":
            rest.append((name, value))
            continue
        lowered = value.strip().lower()
        if lowered not in _TRUE + _FALSE:
            raise Problem(400, f"query parameter async must be true, false, 1 or 0, "
                          f"not {value[:40]!r}")
        if flag is not None and flag != (lowered in _TRUE):
            raise Problem(400, "query parameter async is given twice, once true and once "
                          "false; send it once")
        flag = lowered in _TRUE
    if flag and definition.async_mode == "forbidden":
        raise Problem(400, f"definition {definition.name!r} does not allow asynchronous "
                      "invocation", definition=definition.name)
    return bool(flag) or definition.async_mode == "always", rest


def _headers(request: Request, definition: CompiledDefinition
             ) -> tuple[dict[str, str], dict[str, str]]:
    """The request's headers by name (a repeated one: its first value), and those the
    definition captures for its context (a repeated one: its values joined), in one pass."""
    first: dict[str, str] = {}
    captured: dict[str, str] = {}
    wanted = definition.captured_headers
    for raw_name, raw_value in request.headers.raw:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        first.setdefault(name, value)
        if name in wanted:
            captured[name] = f"{captured[name]}, {value}" if name in captured else value
    return first, captured


def idempotency_key(headers: dict[str, str]) -> str | None:
    raw = headers.get("idempotency-key")
    if raw is None:
        return None
    value = raw.strip().strip('"')
    if not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY or not value.isprintable() \
            or not value.isascii():
        raise Problem(400, f"the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} "
                      "printable ASCII characters")
    return value


def rate_limit(definition: CompiledDefinition, key: str) -> dict[str, str]:
    """The RateLimit-* headers for this answer; a 429 problem when the bucket is empty."""
    if definition.limiter is None:
        return {}
    decision = definition.limiter.take(key)
    headers = decision.headers()
    if not decision.allowed:
        raise Problem(429, f"rate limit of definition {definition.name!r} exceeded; retry "
                      f"in {decision.retry_after}s", headers=headers, definition=definition.name)
    return headers


def _subpath(request: Request) -> list[str]:
    """Decoded sub-path segments after `/services/<name>`, read from the raw path (a decoded
    `%2F` would look like a separator)."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    root = request.scope.get("root_path", "")
    skip = 2 + len([part for part in root.split("/") if part])  # base path, services, name
    pieces = raw.decode("latin-1").split("?", 1)[0].split("/")[1 + skip:]
    try:
        return split_raw("/".join(pieces))
    except UnsafePath as exc:
        raise Problem(400, f"the sub-path is not allowed: {exc}") from None


def _parsed_body(raw: bytes, content_type: str | None, definition: CompiledDefinition, *,
                 any_type: bool, max_depth: int) -> tuple[bytes, Any, dict[str, str] | None]:
    """The raw bytes, the parsed value (JSON; for callbacks also form values), the form."""
    if definition.max_bytes is not None and len(raw) > definition.max_bytes:
        raise Problem(413, f"request body exceeds the limit of {definition.max_bytes} bytes "
                      f"for definition {definition.name!r}", limit=definition.max_bytes)
    if not raw.strip():
        return raw, None, None
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if any_type:
        if media == "application/x-www-form-urlencoded":
            try:
                form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                return raw, None, None  # still available raw, as any other body
            return raw, form, form
        if not (media == "application/json" or media.endswith("+json")):
            return raw, None, None
    return raw, parse_json(raw, max_depth), None


def _verify(definition: CompiledDefinition, raw: bytes, request: Request) -> None:
    assert definition.verifier is not None
    try:
        definition.verifier.verify(raw, request.headers)
    except SignatureInvalid as exc:
        raise Problem(401, f"signature check failed: {exc}", definition=definition.name) from None
    except SignatureUnavailable as exc:
        log.error("signature_secret_missing", definition=definition.name, reason=str(exc))
        raise Problem(500, f"callback {definition.name!r} cannot verify signatures: its secret "
                      "is not configured", definition=definition.name) from None


def _check_input(definition: CompiledDefinition, body: Any) -> None:
    errors = definition.input_errors(body)
    if errors:
        raise Problem(
            400, f"the request body does not match the input schema of {definition.name!r} "
            f"({len(errors)} error{'s' if len(errors) > 1 else ''})",
            title="Validation failed", errors=errors, definition=definition.name)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def respond(result: ActionResult, extra_headers: dict[str, str]) -> Response:
    """The HTTP answer of an action's result."""
    headers = {**result.headers, **extra_headers}
    if result.status in _NO_BODY:
        return Response(status_code=result.status, headers=headers)
    if result.raw is not None:
        return Response(result.raw, result.status, headers,
                        result.media_type or "application/octet-stream")
    body = b"{}" if result.body is None else dumps(result.body)
    return Response(body, result.status, headers, "application/json")


def _job_url(request: Request, headers: dict[str, str], job_id: str) -> str:
    """The job's absolute URL as the client addressed the gateway (its Host header, the base
    path). Starlette's `url_for` would find the same by trying every route, which costs a
    submission more than storing its job."""
    scope = request.scope
    host = headers.get("host")
    if host is None:
        server = scope.get("server") or ("localhost", None)
        host = f"{server[0]}:{server[1]}" if server[1] else server[0]
    return f"{scope['scheme']}://{host}{scope.get('root_path', '')}/services/jobs/{job_id}"


async def _submit(request: Request, request_headers: dict[str, str], runtime: Runtime,
                  context: InvocationContext, principal: Principal, key: str | None,
                  limit_headers: dict[str, str]) -> Response:
    """Everything is validated: store the job and answer 202 (asynchronous request-reply)."""
    try:
        submitted = await runtime.jobs.submit(context.to_json(), principal.client_id, key)
    except IdempotencyMismatch:
        raise Problem(422, "this Idempotency-Key was already used for a different request "
                      "(method, service, sub-path, query or body)",
                      title="Idempotency key reused") from None
    headers = {"Location": _job_url(request, request_headers, submitted.job_id),
               "Retry-After": str(max(1, round(runtime.settings.jobs.poll_after))),
               **limit_headers}
    if submitted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse({"jobId": submitted.job_id, "status": submitted.status},
                        status_code=202, headers=headers)


# What invoking a definition may answer (/services and /callback): the action's own status and
# body, whatever they are (`default`), or the gateway's refusal as a problem.
RESPONSES: dict[str, Any] = {
    "200": {"description": "What the definition's action produced (any JSON value)",
            "content": {"application/json": {"schema": {}}}},
    "202": {"description": "Asynchronous: the job was accepted; poll the `Location` "
            "(`GET /services/jobs/{jobId}`) after `Retry-After` seconds",
            "content": {"application/json": {"schema": {"type": "object", "properties": {
                "jobId": {"type": "string"}, "status": {"type": "string"}}}}}},
    "400": {"$ref": "#/components/responses/Problem"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/Problem"},
    "404": {"$ref": "#/components/responses/Problem"},
    "405": {"$ref": "#/components/responses/Problem"},
    "413": {"$ref": "#/components/responses/Problem"},
    "422": {"$ref": "#/components/responses/Problem"},
    "429": {"$ref": "#/components/responses/Problem"},
    "502": {"$ref": "#/components/responses/Problem"},
    "504": {"$ref": "#/components/responses/Problem"},
    "default": {"description": "The status, headers and body the definition's action answers",
                "content": {"*/*": {"schema": {}}}},
}
