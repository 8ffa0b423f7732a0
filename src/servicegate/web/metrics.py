"""Request metrics: HTTP requests by route template, method and status, their latency, and
requests that reached a service definition.

prometheus-client takes a lock and makes several calls per `inc`/`observe`. The hot path
instead adds to plain per-process tallies (one dict lookup and a few integer additions; only
the event loop thread writes them) which `flush()` adds to the prometheus-client metrics:
before every scrape (`/metrics` calls it), at shutdown, and at most `FLUSH_SECONDS` after a
tally is opened - so in multiprocess mode another worker's scrape sees them a second later.
The exposition (names, labels, buckets, values) is the same as with direct calls.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left

from prometheus_client import Counter, Histogram

FLUSH_SECONDS = 1.0
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

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

# (route, method, status) -> [sum of seconds, one count per bucket (the last: +Inf)]; the
# request count is the sum of the bucket counts.
_http: dict[tuple[str, str, int], list[float]] = {}
# (definition, via, status) -> count
_definitions: dict[tuple[str, str, int], int] = {}
_timer: asyncio.TimerHandle | None = None
_timer_loop: asyncio.AbstractEventLoop | None = None
_EMPTY = [0.0] + [0] * (len(BUCKETS) + 1)


def observe(route: str, method: str, status: int, seconds: float) -> None:
    """One HTTP request answered (the middleware calls this)."""
    try:
        tally = _http[route, method, status]
    except KeyError:
        tally = _http[route, method, status] = list(_EMPTY)
        _flush_soon()
    tally[0] += seconds
    # bucket i counts `seconds <= BUCKETS[i]` (prometheus' `le`); past the last: +Inf
    tally[1 + bisect_left(BUCKETS, seconds)] += 1


def count_definition(definition: str, via: str, status: int) -> None:
    """One request reached a service definition and was answered with `status`."""
    try:
        _definitions[definition, via, status] += 1
    except KeyError:
        _definitions[definition, via, status] = 1
        _flush_soon()


def flush() -> None:
    """Add the tallies to the prometheus-client metrics and start new ones."""
    global _timer
    if _timer is not None:
        if _timer_loop is not None and not _timer_loop.is_closed():
            _timer.cancel()
        _timer = None
    http, definitions = list(_http.items()), list(_definitions.items())
    _http.clear()
    _definitions.clear()
    for (route, method, status), tally in http:
        REQUESTS.labels(route, method, str(status)).inc(sum(tally[1:]))
        latency = LATENCY.labels(route)
        # Histogram.observe adds to these very values, one observation at a time.
        latency._sum.inc(tally[0])
        for bucket, count in zip(latency._buckets, tally[1:], strict=True):
            if count:
                bucket.inc(count)
    for (definition, via, status), count in definitions:
        DEFINITION_REQUESTS.labels(definition, via, str(status)).inc(count)


def _flush_soon() -> None:
    """Called when a tally is opened: flush within FLUSH_SECONDS (on this event loop)."""
    global _timer, _timer_loop
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no event loop (a synchronous caller): the next scrape flushes
        return
    # A timer of an earlier, closed loop (tests run many) never fires: start a new one.
    if _timer is None or _timer_loop is not loop:
        _timer = loop.call_later(FLUSH_SECONDS, flush)
        _timer_loop = loop
