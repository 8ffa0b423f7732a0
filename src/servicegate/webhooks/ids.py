"""Time-ordered identifiers: `<prefix>_<µs since epoch, hex><random>`; sorting them sorts by age."""

from __future__ import annotations

import secrets
import time


def sortable_id(prefix: str) -> str:
    return f"{prefix}_{time.time_ns() // 1000:014x}{secrets.token_hex(6)}"
