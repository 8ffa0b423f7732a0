"""The request headers as a dict by name, built once per request.

ASGI gives headers as a list of (lowercase name, value) byte pairs; several steps of the hot
path (request id, body length, credentials, the invocation context) each looked for a few
names in it. `dict(pairs)` is built in C in one go and each look-up is then one hash probe.
When a name repeats, the map is None and callers walk the list as before (first value,
values joined, ... whatever each one's rule is). GatewayMiddleware makes the map (inline: it
is on every request's path); `header_map` makes it for a request that did not pass there.
Nothing may change `scope["headers"]` after that.
"""

from __future__ import annotations

from starlette.types import Scope

KEY = "servicegate.headers"


def build(scope: Scope) -> dict[bytes, bytes] | None:
    """Make and keep the map of this request's headers (None: a name repeats)."""
    pairs = scope["headers"]
    by_name: dict[bytes, bytes] | None = dict(pairs)
    if len(by_name) != len(pairs):  # type: ignore[arg-type]
        by_name = None
    scope[KEY] = by_name
    return by_name


def header_map(scope: Scope) -> dict[bytes, bytes] | None:
    """The map the middleware made (or made now), or None when a header name repeats."""
    try:
        return scope[KEY]  # type: ignore[no-any-return]
    except KeyError:
        return build(scope)
