"""When to try again: the `[webhooks] retry_schedule` with jitter, honouring `Retry-After`."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER = 86_400.0


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date), capped at a day."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def next_delay(schedule: Sequence[float], attempts: int, budget: int, *, jitter: float,
               retry_after: float | None = None) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones, or None when out of budget.

    `schedule[n]` is the wait before attempt n+1 (schedule[0] is the first attempt, normally
    immediate); attempts past the schedule (granted by a manual retry) reuse its last step."""
    if attempts >= budget:
        return None
    base = schedule[min(attempts, len(schedule) - 1)]
    delay = base * random.uniform(1.0 - jitter, 1.0 + jitter) if base else 0.0
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
