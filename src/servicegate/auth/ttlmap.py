"""A small expiring map for the auth hot path (a dict lookup plus one clock read).

cachetools' TTLCache costs ~4 µs per hit here, a third of the whole ping; this costs ~0.3 µs.
Entries expire `ttl` seconds after they are written; the oldest entries are dropped when full.
"""

from __future__ import annotations

import time
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
_ABSENT = object()


class TTLMap(Generic[K, V]):
    def __init__(self, ttl: float, maxsize: int = 50_000) -> None:
        self.ttl = ttl
        self.maxsize = maxsize
        self._data: dict[K, tuple[V, float]] = {}

    def get(self, key: K, default: object = _ABSENT) -> V | object:
        entry = self._data.get(key)
        if entry is None:
            return default
        if entry[1] < time.monotonic():
            self._data.pop(key, None)
            return default
        return entry[0]

    def set(self, key: K, value: V, ttl: float | None = None) -> None:
        data = self._data
        if len(data) >= self.maxsize and key not in data:
            for old in list(data)[: max(1, self.maxsize // 10)]:  # drop the oldest tenth
                data.pop(old, None)
        data[key] = (value, time.monotonic() + (self.ttl if ttl is None else ttl))

    def discard(self, key: K) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
