"""The hot path's metric tallies reach prometheus-client exactly as direct calls would."""

import asyncio

from prometheus_client import REGISTRY, Histogram

from servicegate.web import metrics


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_flush_adds_counts_buckets_and_sum_as_observe_would():
    route = "/test/flush-exact"
    reference = Histogram("test_flush_reference_seconds", "reference", buckets=metrics.BUCKETS)
    before = _sample("servicegate_http_requests_total",
                     {"route": route, "method": "GET", "status": "200"})
    for seconds in (0.0001, 0.0005, 0.0007, 0.003, 0.003, 2.0, 11.0, 10.0):
        metrics.observe(route, "GET", 200, seconds)
        reference.observe(seconds)
    metrics.observe(route, "POST", 502, 0.02)
    metrics.flush()
    assert _sample("servicegate_http_requests_total",
                   {"route": route, "method": "GET", "status": "200"}) == before + 8
    assert _sample("servicegate_http_requests_total",
                   {"route": route, "method": "POST", "status": "502"}) == 1
    for bound in [*metrics.BUCKETS, float("inf")]:
        le = "+Inf" if bound == float("inf") else str(float(bound))
        want = _sample("test_flush_reference_seconds_bucket", {"le": le})
        if bound >= 0.025:
            want += 1  # the POST's 0.02 s
        got = _sample("servicegate_http_request_duration_seconds_bucket",
                      {"route": route, "le": le})
        assert got == want, le
    assert _sample("servicegate_http_request_duration_seconds_count", {"route": route}) == 9
    total = _sample("servicegate_http_request_duration_seconds_sum", {"route": route})
    assert abs(total - (_sample("test_flush_reference_seconds_sum", {}) + 0.02)) < 1e-9


def test_definition_counts_flush_and_start_over():
    labels = {"definition": "flush-test", "via": "services", "status": "201"}
    for _ in range(3):
        metrics.count_definition("flush-test", "services", 201)
    metrics.flush()
    assert _sample("servicegate_definition_requests_total", labels) == 3
    metrics.flush()  # nothing new: nothing added twice
    assert _sample("servicegate_definition_requests_total", labels) == 3


async def test_tallies_flush_by_themselves(monkeypatch):
    monkeypatch.setattr(metrics, "FLUSH_SECONDS", 0.05)
    metrics.flush()
    labels = {"definition": "timer-test", "via": "callback", "status": "200"}
    metrics.count_definition("timer-test", "callback", 200)
    assert _sample("servicegate_definition_requests_total", labels) == 0
    await asyncio.sleep(0.2)
    assert _sample("servicegate_definition_requests_total", labels) == 1
