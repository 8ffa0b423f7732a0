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
    "build_verifier",
]


def build_verifier(spec: object) -> Verifier:
    from servicegate.definitions.models import HmacSignature, StandardWebhooksSignature

    if isinstance(spec, HmacSignature):
        return HmacSha256Verifier(spec.header, spec.encoding, spec.prefix, spec.secret_env)
    if isinstance(spec, StandardWebhooksSignature):
        return StandardWebhooksVerifier(spec.secret_env, spec.tolerance)
    raise TypeError(f"unknown signature spec {type(spec).__name__}")
