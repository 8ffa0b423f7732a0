"""Scope names and the one check every router uses."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from servicegate.validation import nearest

SERVICES = "services"
CALLBACK = "callback"
IDENTITY_READ = "identity:read"
WEBHOOKS = "webhooks"
EVENTS_PUBLISH = "events:publish"
ADMIN = "admin"

STANDARD_SCOPES = (SERVICES, CALLBACK, IDENTITY_READ, WEBHOOKS, EVENTS_PUBLISH, ADMIN)
_SCOPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._/-]{0,99}$")


def validate_scopes(scopes: Iterable[str], known: Collection[str] | None = None) -> list[str]:
    """Return the scopes de-duplicated in order; raise ValueError on a malformed one, or on
    one outside `known` (when given), naming the nearest known scope."""
    seen: list[str] = []
    for scope in scopes:
        if not _SCOPE_RE.match(scope):
            raise ValueError(f"malformed scope {scope!r}")
        if known is not None and scope not in known:
            guess = nearest(scope, known)
            raise ValueError(f"unknown scope {scope!r}"
                             + (f"; did you mean {guess!r}?" if guess else "")
                             + f" (known scopes: {', '.join(sorted(known))})")
        if scope not in seen:
            seen.append(scope)
    return seen


def known_scopes(definition_scopes: Iterable[str] = ()) -> frozenset[str]:
    """The scopes a client may hold: the standard ones, and those the loaded definitions use
    (`services:<name>` for each, and the extra scopes they demand)."""
    return frozenset((*STANDARD_SCOPES, *definition_scopes))


def grants(held: frozenset[str], needed: str) -> bool:
    """`services` covers every `services:<name>`; otherwise scopes match exactly."""
    if needed in held:
        return True
    head, sep, _ = needed.partition(":")
    return bool(sep) and head == SERVICES and SERVICES in held


def missing(held: frozenset[str], needed: Iterable[str]) -> list[str]:
    return [scope for scope in needed if not grants(held, scope)]
