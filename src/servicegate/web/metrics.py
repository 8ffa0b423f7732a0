"""Request metrics: HTTP requests by route template, method and status, their latency, and
requests that reached a service definition. Every label comes from a closed set: route
templates, the standard methods (anything else is `other`), status codes, loaded definitions."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter(
    "servicegate_http_requests_total",
    "HTTP requests answered",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "servicegate_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route"],
    buckets=BUCKETS,
)
DEFINITION_REQUESTS = Counter(
    "servicegate_definition_requests_total",
    "Requests that reached a service definition, by answer status",
    ["definition", "via", "status"],
)


# Label children by their values: `labels()` validates and locks on each call, a child kept
# is one dict lookup (prometheus-client's documented way for hot paths). The keys come from
# closed sets, as the labels do.
_http: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_definitions: dict[tuple[str, str, int], Any] = {}


def observe(route: str, method: str, status: int, seconds: float) -> None:
    """One HTTP request answered."""
    method = method if method in METHODS else "other"
    try:
        count, latency = _http[route, method, status]
    except KeyError:
        count, latency = _http[route, method, status] = (
            REQUESTS.labels(route, method, str(status)), LATENCY.labels(route))
    count.inc()
    latency.observe(seconds)


def count_definition(definition: str, via: str, status: int) -> None:
    """One request reached a service definition and was answered with `status`."""
    try:
        child = _definitions[definition, via, status]
    except KeyError:
        child = _definitions[definition, via, status] = DEFINITION_REQUESTS.labels(
            definition, via, str(status))
    child.inc()
