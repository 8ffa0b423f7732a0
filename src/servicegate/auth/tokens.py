"""Issuing and verifying the gateway's own access tokens (JWT, ES256)."""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt

from servicegate.auth.keyset import ALGORITHM, KeySet


class TokenError(Exception):
    """A token that must be refused; the message is safe to show the caller."""


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and value.startswith("eyJ")


class TokenIssuer:
    def __init__(self, keyset: KeySet, issuer: str, audience: str, ttl: float) -> None:
        self.keyset = keyset
        self.issuer = issuer
        self.audience = audience
        self.ttl = int(ttl)

    def issue(self, client_id: str, scopes: list[str]) -> tuple[str, int]:
        self.keyset.refresh_if_stale()
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": client_id,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl,
            "jti": secrets.token_urlsafe(16),
            "scope": " ".join(scopes),
            "client_id": client_id,
        }
        token = jwt.encode(
            claims, self.keyset.signing_key, algorithm=ALGORITHM,
            headers={"kid": self.keyset.current_kid, "typ": "at+jwt"},
        )
        return token, self.ttl

    def verify(self, token: str, header: dict[str, Any]) -> dict[str, Any]:
        if header.get("alg") != ALGORITHM:
            raise TokenError("token algorithm not accepted")
        verifier = self.keyset.verifier(str(header.get("kid", "")))
        if verifier is None:
            raise TokenError("token signed by an unknown key")
        return verified_claims(token, verifier, algorithms=[ALGORITHM], audience=self.audience,
                               issuer=self.issuer, required=["exp", "iat", "iss", "aud", "sub"],
                               leeway=5)


def verified_claims(token: str, key: Any, *, algorithms: list[str], audience: str, issuer: str,
                    required: list[str], leeway: float) -> dict[str, Any]:
    """`jwt.decode` with its refusals as TokenError messages a caller may see."""
    try:
        claims: dict[str, Any] = jwt.decode(token, key, algorithms=algorithms, audience=audience,
                                            issuer=issuer, options={"require": required},
                                            leeway=leeway)
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired") from None
    except jwt.InvalidAudienceError:
        raise TokenError("token audience not accepted") from None
    except jwt.PyJWTError:
        raise TokenError("token invalid") from None
    return claims


def unverified_header_and_issuer(token: str) -> tuple[dict[str, Any], str]:
    """Read the header and `iss` to pick the verifier; nothing here is trusted yet."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenError("token malformed") from None
    issuer = claims.get("iss")
    if not isinstance(issuer, str):
        raise TokenError("token has no issuer")
    return header, issuer


def scopes_of(claims: dict[str, Any]) -> frozenset[str]:
    raw = claims.get("scope", claims.get("scp", ""))
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(str(s) for s in raw)
    return frozenset()
