"""Prometheus metrics of events and deliveries."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_PUBLISHED = Counter(
    "servicegate_events_published_total", "Events accepted and stored", ["origin"])
DELIVERIES = Counter(
    "servicegate_webhook_deliveries_total",
    "Delivery attempts by outcome (succeeded, retry, failed, held, cancelled)",
    ["outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "servicegate_webhook_attempt_duration_seconds",
    "Time from sending a delivery to its answer (or error)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
)
QUEUE_DEPTH = Gauge(
    "servicegate_webhook_queue_depth",
    "Pending deliveries: due now, scheduled for later, leased by a worker",
    ["state"], multiprocess_mode="max",
)
OLDEST_DUE = Gauge(
    "servicegate_webhook_oldest_pending_age_seconds",
    "How long the oldest due delivery has been waiting for a worker",
    multiprocess_mode="max",
)

_outcomes: dict[str, object] = {}


def delivered(outcome: str, count: int = 1) -> None:
    """Count delivery outcomes (label children cached: this runs per settled batch)."""
    child = _outcomes.get(outcome)
    if child is None:
        child = _outcomes[outcome] = DELIVERIES.labels(outcome)
    child.inc(count)  # type: ignore[attr-defined]
