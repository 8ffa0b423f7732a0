"""`/services/{name}?async=true`: store the invocation as a job and answer 202 (issue 6)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.types import Scope

from servicegate.auth.principal import Principal
from servicegate.jobs.store import IdempotencyMismatch
from servicegate.runtime import Runtime
from servicegate.web.dispatch import RawResponse
from servicegate.web.headermap import header_map
from servicegate.web.problems import ProblemError
from servicegate.web.responses import dumps

MAX_KEY = 255


def origin(scope: Scope) -> bytes:
    """`scheme://host[:port]` as the client addressed us (cheaper than `request.base_url`),
    latin-1 as in the Host header."""
    by_name = header_map(scope)
    host = (by_name.get(b"host") if by_name is not None  # the usual case: one lookup
            else next((v for n, v in scope["headers"] if n == b"host"), None))
    scheme = scope["scheme"]
    if host is not None:
        return b"%s://%s" % (scheme.encode("latin-1"), host)
    host, port = scope.get("server") or ("localhost", None)
    return (f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}").encode("latin-1")


def idempotency_key(scope: Scope) -> str | None:
    by_name = header_map(scope)
    # the first one, as `request.headers.get` (ASGI names are lowercase bytes); the header map
    # exists when no name repeats (the usual case: one lookup, no scan)
    raw = (by_name.get(b"idempotency-key") if by_name is not None
           else next((v for n, v in scope["headers"] if n == b"idempotency-key"), None))
    if raw is None:
        return None
    value = raw.decode("latin-1").strip().strip('"')
    if not 1 <= len(value) <= MAX_KEY or not value.isprintable() or not value.isascii():
        raise ProblemError(400, f"the Idempotency-Key header must be 1 to {MAX_KEY} printable "
                           "ASCII characters")
    return value


async def submit(scope: Scope, runtime: Runtime, context: dict[str, Any], principal: Principal,
                 key: str | None, limit_headers: dict[str, str]) -> Response:
    """Everything is validated: store the job and answer 202 (asynchronous request-reply)."""
    try:
        submitted = await runtime.jobs.submit(context, principal.client_id, key)
    except IdempotencyMismatch:
        raise ProblemError(422, "this Idempotency-Key was already used for a different "
                           "request (method, service, sub-path, query or body)",
                           title="Idempotency key reused") from None
    # the headers as ASGI pairs at once (Location, Retry-After, then the rate limit's)
    base_path = runtime.settings.server.base_path.encode("latin-1")
    headers = [(b"location", b"%s%s/services/jobs/%s" % (origin(scope), base_path,
                                                        submitted.job_id.encode("latin-1"))),
               runtime.jobs.retry_after_header]
    if limit_headers:
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in limit_headers.items()]
    if submitted.replayed:
        headers.append((b"idempotent-replayed", b"true"))
    return RawResponse.from_raw(dumps({"jobId": submitted.job_id, "status": submitted.status}),
                                202, headers, "application/json")
