"""What a finished attempt means for a job: succeeded, retry later, or failed for good."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import orjson

from servicegate.actions.base import ActionResult
from servicegate.config import JobsConfig
from servicegate.problems import Problem, problem_body

#: Problems an action raises for upstream trouble (unreachable, timeout, overloaded): retried.
RETRYABLE_PROBLEMS = frozenset({502, 503, 504})


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: str  # "succeeded" | "retry" | "failed"
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


def problem(job_id: str, status: int, detail: str, *, trace_id: str | None = None,
            title: str | None = None, **extensions: Any) -> dict[str, Any]:
    return problem_body(status, detail, instance=f"/services/jobs/{job_id}", title=title,
                        trace_id=trace_id or None, **extensions)


def from_problem(job_id: str, exc: Problem, trace_id: str | None) -> dict[str, Any]:
    return exc.body(instance=f"/services/jobs/{job_id}", trace_id=trace_id or None)


def judge_result(job_id: str, result: ActionResult, config: JobsConfig,
                 trace_id: str | None) -> Verdict:
    """An answer below 500 is a success (its status is in `result.status`); a 5xx answer is an
    upstream failure and retried; a result over `result_max_bytes` fails the job."""
    body = result.parsed_body()
    stored = {"status": result.status, "body": body}
    size = len(orjson.dumps(body))
    if size > config.result_max_bytes:
        return Verdict("failed", None, problem(
            job_id, 500, f"the result of {size} bytes exceeds the limit of "
            f"{config.result_max_bytes} bytes ([jobs] result_max_bytes)", trace_id=trace_id))
    if result.status >= 500:
        return Verdict("retry", stored, problem(
            job_id, 502, f"the action answered {result.status}", trace_id=trace_id,
            upstreamStatus=result.status))
    return Verdict("succeeded", stored)


def judge_problem(job_id: str, exc: Problem, trace_id: str | None) -> Verdict:
    kind = "retry" if exc.status in RETRYABLE_PROBLEMS else "failed"
    return Verdict(kind, None, from_problem(job_id, exc, trace_id))


def backoff(config: JobsConfig, attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: exponential from `retry_backoff`, capped, jittered."""
    base = min(config.retry_backoff * (2 ** max(attempts - 1, 0)), config.retry_backoff_max)
    return base * random.uniform(1.0 - config.jitter, 1.0 + config.jitter) if base else 0.0
