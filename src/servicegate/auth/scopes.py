"""Scope names and the one check every router uses."""

from __future__ import annotations

import re
from collections.abc import Iterable

SERVICES = "services"
CALLBACK = "callback"
IDENTITY_READ = "identity:read"
WEBHOOKS = "webhooks"
EVENTS_PUBLISH = "events:publish"
ADMIN = "admin"

STANDARD_SCOPES = (SERVICES, CALLBACK, IDENTITY_READ, WEBHOOKS, EVENTS_PUBLISH, ADMIN)
_SCOPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._/-]{0,99}$")


def validate_scopes(scopes: Iterable[str]) -> list[str]:
    """Return the scopes de-duplicated in order; raise ValueError on a malformed one."""
    seen: list[str] = []
    for scope in scopes:
        if not _SCOPE_RE.match(scope):
            raise ValueError(f"malformed scope {scope!r}")
        if scope not in seen:
            seen.append(scope)
    return seen


def grants(held: frozenset[str], needed: str) -> bool:
    """`services` covers every `services:<name>`; otherwise scopes match exactly."""
    if needed in held:
        return True
    head, sep, _ = needed.partition(":")
    return bool(sep) and head == SERVICES and SERVICES in held


def missing(held: frozenset[str], needed: Iterable[str]) -> list[str]:
    return [scope for scope in needed if not grants(held, scope)]
