"""The delivery request: JSON body and Standard Webhooks headers (`webhook-id`,
`webhook-timestamp`, `webhook-signature`), computed as the `standardwebhooks` library does and
verified with it in the tests."""

from __future__ import annotations

import base64
import functools
import hmac
from datetime import UTC, datetime
from typing import Any

import orjson

from servicegate.clock import isoformat


def body(event_id: str, event: str, occurred_at: datetime, data: Any, *,
         secret: str | None, include_secret: bool) -> bytes:
    """`{"id","event","timestamp","data"}` plus `"secret"` for receivers of the reference API."""
    payload: dict[str, Any] = {"id": event_id, "event": event,
                               "timestamp": isoformat(occurred_at), "data": data}
    if include_secret and secret is not None:
        payload["secret"] = secret
    return orjson.dumps(payload)


def headers(message_id: str, content: bytes, secret: str | None, *, user_agent: str,
            now: datetime | None = None) -> dict[str, str]:
    """`webhook-id` (stable across retries), `webhook-timestamp` and, with a secret,
    `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>` keyed by the secret's
    UTF-8 bytes."""
    stamp = str(int((now or datetime.now(UTC)).timestamp()))
    out = {
        "content-type": "application/json",
        "user-agent": user_agent,
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
    }
    if secret:
        mac = _keyed(secret).copy()
        mac.update(b"%s.%s.%s" % (message_id.encode(), stamp.encode(), content))
        out["webhook-signature"] = "v1," + base64.b64encode(mac.digest()).decode("ascii")
    return out


@functools.lru_cache(maxsize=1024)
def _keyed(secret: str) -> hmac.HMAC:
    """HMAC-SHA256 keyed by the secret, nothing hashed yet (copied per message: keying is the
    costly part)."""
    return hmac.new(secret.encode("utf-8"), digestmod="sha256")
