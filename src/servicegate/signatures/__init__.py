"""Inbound signature checks for callbacks: HMAC-SHA256 in a header, or Standard Webhooks."""

from __future__ import annotations

from servicegate.signatures.base import SignatureInvalid, SignatureUnavailable, Verifier
from servicegate.signatures.hmac_sha256 import HmacSha256Verifier
from servicegate.signatures.standard import StandardWebhooksVerifier

__all__ = [
    "HmacSha256Verifier",
    "SignatureInvalid",
    "SignatureUnavailable",
    "StandardWebhooksVerifier",
    "Verifier",
]

