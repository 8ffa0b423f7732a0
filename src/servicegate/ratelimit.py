"""Token buckets (in process; one set per worker process): per client and definition, and
per client id and address for failed client authentications.

A bucket idle for a whole window is full again, so buckets live in a TTL cache whose
time-to-live is the window: memory stays bounded and eviction never changes an answer.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from cachetools import TTLCache


@dataclass(slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int
    window: float

    def headers(self) -> dict[str, str]:
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
            "RateLimit-Policy": f"{self.limit};w={math.ceil(self.window)}",
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


class TokenBuckets:
    def __init__(self, requests: int, per: float, max_clients: int = 100_000) -> None:
        self.capacity = float(requests)
        self.rate = requests / per
        self.per = per
        self._buckets: TTLCache[str, list[float]] = TTLCache(maxsize=max_clients, ttl=per)

    def take(self, key: str, now: float | None = None) -> Decision:
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            tokens = self.capacity
        else:
            tokens = min(self.capacity, bucket[0] + (now - bucket[1]) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = [tokens, now]
        retry_after = 0 if allowed else math.ceil((1.0 - tokens) / self.rate)
        reset = math.ceil((self.capacity - tokens) / self.rate)
        return Decision(allowed, int(self.capacity), int(tokens), reset, max(retry_after, 0),
                        self.per)

    def give_back(self, key: str) -> None:
        """Return a token taken for an attempt that turned out not to count (limits of
        failures: every attempt takes one while it is undecided, a success gives it back)."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket[0] = min(self.capacity, bucket[0] + 1.0)
