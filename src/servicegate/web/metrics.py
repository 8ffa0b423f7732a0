"""Request metrics: HTTP requests by route template, method and status, their latency, and
requests that reached a service definition. Every label comes from a closed set: route
templates, the standard methods (anything else is `other`), status codes, loaded definitions."""

from __future__ import annotations

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


def observe(route: str, method: str, status: int, seconds: float) -> None:
    """One HTTP request answered."""
    REQUESTS.labels(route, method if method in METHODS else "other", str(status)).inc()
    LATENCY.labels(route).observe(seconds)


def count_definition(definition: str, via: str, status: int) -> None:
    """One request reached a service definition and was answered with `status`."""
    DEFINITION_REQUESTS.labels(definition, via, str(status)).inc()
