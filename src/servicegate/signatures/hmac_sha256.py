"""HMAC-SHA256 over the raw body, hex or base64, in a named header (GitHub/Stripe-like)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from servicegate.signatures.base import SignatureInvalid, Verifier


class HmacSha256Verifier(Verifier):
    def __init__(self, header: str, encoding: str, prefix: str, secret_env: str) -> None:
        self.header = header.lower()
        self.encoding = encoding
        self.prefix = prefix
        self.secret_env = secret_env

    def verify(self, raw: bytes, headers: Mapping[str, str]) -> None:
        key = self.secret().encode()
        sent = headers.get(self.header)
        if not sent:
            raise SignatureInvalid(f"the {self.header} header is missing")
        sent = sent.strip()
        if self.prefix:
            if not sent.startswith(self.prefix):
                raise SignatureInvalid(f"the signature must start with {self.prefix!r}")
            sent = sent[len(self.prefix):]
        try:
            given = bytes.fromhex(sent) if self.encoding == "hex" else base64.b64decode(
                sent, validate=True)
        except (ValueError, binascii.Error):
            raise SignatureInvalid(f"the signature is not valid {self.encoding}") from None
        expected = hmac.new(key, raw, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, given):
            raise SignatureInvalid("the signature does not match the body")
