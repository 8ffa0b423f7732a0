"""The delivery request: JSON body and Standard Webhooks headers, signed with `standardwebhooks`."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import orjson
from standardwebhooks import Webhook

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
    now = now or datetime.now(UTC)
    out = {
        "content-type": "application/json",
        "user-agent": user_agent,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
    }
    if secret:
        out["webhook-signature"] = _signer(secret).sign(message_id, now, content.decode("utf-8"))
    return out


@functools.lru_cache(maxsize=1024)
def _signer(secret: str) -> Webhook:
    return Webhook(secret.encode("utf-8"))
