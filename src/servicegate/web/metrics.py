"""HTTP metrics: requests by route template, method and status; latency histogram."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "servicegate_http_requests_total",
    "HTTP requests answered",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "servicegate_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_children: dict[tuple[str, str, int], tuple[object, object]] = {}


def observe(route: str, method: str, status: int, seconds: float) -> None:
    key = (route, method, status)
    pair = _children.get(key)
    if pair is None:
        pair = (REQUESTS.labels(route, method, str(status)), LATENCY.labels(route))
        _children[key] = pair
    pair[0].inc()  # type: ignore[attr-defined]
    pair[1].observe(seconds)  # type: ignore[attr-defined]
