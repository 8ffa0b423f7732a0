"""Standard Webhooks (https://www.standardwebhooks.com/) with a configurable timestamp tolerance.

The `standardwebhooks` library computes the signature; its own `verify` has a fixed five-minute
tolerance, so the timestamp window is checked here and the comparison is constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from servicegate.signatures.base import SignatureInvalid, Verifier


class StandardWebhooksVerifier(Verifier):
    def __init__(self, secret_env: str, tolerance: float) -> None:
        self.secret_env = secret_env
        self.tolerance = tolerance

    def verify(self, raw: bytes, headers: Mapping[str, str]) -> None:
        secret = self.secret()
        msg_id = headers.get("webhook-id")
        stamp = headers.get("webhook-timestamp")
        signatures = headers.get("webhook-signature")
        if not (msg_id and stamp and signatures):
            raise SignatureInvalid("webhook-id, webhook-timestamp and webhook-signature are "
                                   "required")
        try:
            seconds = int(stamp)
        except ValueError:
            raise SignatureInvalid("webhook-timestamp is not a number of seconds") from None
        if abs(time.time() - seconds) > self.tolerance:
            raise SignatureInvalid("webhook-timestamp is outside the accepted tolerance")
        try:
            data = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureInvalid("the signed body is not UTF-8") from None
        try:
            webhook = Webhook(secret)
        except Exception:
            raise SignatureInvalid("the configured secret is not a valid whsec_ secret") from None
        expected = webhook.sign(msg_id, datetime.fromtimestamp(seconds, tz=UTC), data)
        expected_bytes = base64.b64decode(expected.split(",", 1)[1])
        for candidate in signatures.split():
            version, _, value = candidate.partition(",")
            if version != "v1":
                continue
            try:
                given = base64.b64decode(value, validate=True)
            except (ValueError, binascii.Error):
                continue
            if hmac.compare_digest(expected_bytes, given):
                return
        raise SignatureInvalid("no webhook-signature matches the body")
