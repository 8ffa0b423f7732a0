"""The delivery request: JSON body and Standard Webhooks headers (`webhook-id`,
`webhook-timestamp`, `webhook-signature`), computed as the `standardwebhooks` library does and
verified with it (and with `svix`) in the tests."""

from __future__ import annotations

import base64
import functools
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from servicegate.clock import isoformat
from servicegate.webhooks.secrets import signing_key


def body(event_id: str, event: str, occurred_at: datetime, data: Any, *,
         secret: str | None, include_secret: bool) -> bytes:
    """`{"id","event","timestamp","data"}` plus `"secret"` for receivers of the reference API."""
    payload: dict[str, Any] = {"id": event_id, "event": event,
                               "timestamp": isoformat(occurred_at), "data": data}
    if include_secret and secret is not None:
        payload["secret"] = secret
    return orjson.dumps(payload)


def headers(message_id: str, content: bytes, secrets: Sequence[str], *, user_agent: str,
            now: datetime | None = None) -> dict[str, str]:
    """`webhook-id` (stable across retries), `webhook-timestamp` and, with secrets,
    `webhook-signature: v1,<sig> v1,<sig>`: one base64 HMAC-SHA256 of id.timestamp.body per
    secret, the current one first (during a rotation the previous secret signs too, and a
    receiver accepts the message when any signature matches)."""
    stamp = str(int((now or datetime.now(UTC)).timestamp()))
    out = {
        "content-type": "application/json",
        "user-agent": user_agent,
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
    }
    if secrets:
        signed = b"%s.%s.%s" % (message_id.encode(), stamp.encode(), content)
        signatures = []
        for secret in secrets:
            mac = _keyed(secret).copy()
            mac.update(signed)
            signatures.append("v1," + base64.b64encode(mac.digest()).decode("ascii"))
        out["webhook-signature"] = " ".join(signatures)
    return out


@functools.lru_cache(maxsize=1024)
def _keyed(secret: str) -> hmac.HMAC:
    """HMAC-SHA256 keyed by the secret, nothing hashed yet (copied per message: keying is the
    costly part)."""
    return hmac.new(signing_key(secret), digestmod="sha256")
