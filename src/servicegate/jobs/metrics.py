"""Prometheus metrics of asynchronous jobs."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SUBMITTED = Counter("servicegate_jobs_submitted_total", "Jobs accepted (202), replays excluded")
ATTEMPTS = Counter(
    "servicegate_job_attempts_total",
    "Finished job attempts by outcome (succeeded, retry, failed)", ["outcome"])
RUN_SECONDS = Histogram(
    "servicegate_job_run_duration_seconds", "Time one job attempt took to run",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900))
QUEUE_DEPTH = Gauge(
    "servicegate_job_queue_depth",
    "Jobs not finished: due now, waiting for a retry, leased by a worker (running)",
    ["state"], multiprocess_mode="max")
OLDEST_DUE = Gauge(
    "servicegate_job_oldest_queued_age_seconds",
    "How long the oldest due job has been waiting for a worker", multiprocess_mode="max")
