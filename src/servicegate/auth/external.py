"""Tokens from external OpenID providers: verified against their JWKS (fetched and cached)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import jwt
import structlog

from servicegate.auth.tokens import TokenError, verified_claims
from servicegate.config import ExternalIssuer

log = structlog.get_logger("servicegate.auth.external")
_MIN_REFETCH = 30.0  # an unknown kid triggers at most one refetch per issuer this often


class ExternalIssuers:
    def __init__(self, issuers: list[ExternalIssuer], cache_ttl: float) -> None:
        self._issuers = {i.issuer: i for i in issuers}
        self._cache_ttl = cache_ttl
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.session: aiohttp.ClientSession | None = None

    def knows(self, issuer: str) -> bool:
        return issuer in self._issuers

    async def _fetch(self, issuer: ExternalIssuer) -> None:
        lock = self._locks.setdefault(issuer.issuer, asyncio.Lock())
        async with lock:
            if time.monotonic() - self._fetched.get(issuer.issuer, -1e9) < 1.0:
                return
            if self.session is None:
                raise TokenError("issuer keys unavailable")
            try:
                async with self.session.get(
                    issuer.jwks_url, timeout=aiohttp.ClientTimeout(total=5)
                ) as resp:
                    resp.raise_for_status()
                    data = await resp.json(content_type=None)
                keys = {}
                for jwk in data.get("keys", []):
                    try:
                        keys[jwk.get("kid", "")] = jwt.PyJWK(jwk)
                    except jwt.PyJWTError:
                        continue
                self._keys[issuer.issuer] = keys
                self._fetched[issuer.issuer] = time.monotonic()
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("jwks_fetch_failed", issuer=issuer.issuer, error=str(exc))
                raise TokenError("issuer keys unavailable") from None

    async def _key(self, issuer: ExternalIssuer, kid: str) -> Any:
        age = time.monotonic() - self._fetched.get(issuer.issuer, -1e9)
        if issuer.issuer not in self._keys or age > self._cache_ttl:
            await self._fetch(issuer)
        key = self._keys.get(issuer.issuer, {}).get(kid)
        if key is None and age > _MIN_REFETCH:
            await self._fetch(issuer)
            key = self._keys.get(issuer.issuer, {}).get(kid)
        if key is None:
            raise TokenError("token signed by an unknown key")
        return key

    async def verify(self, token: str, header: dict[str, Any], issuer_name: str) -> dict[str, Any]:
        issuer = self._issuers[issuer_name]
        alg = header.get("alg")
        if alg not in issuer.algorithms:
            raise TokenError("token algorithm not accepted")
        key = await self._key(issuer, str(header.get("kid", "")))
        return verified_claims(token, key, algorithms=issuer.algorithms,
                               audience=issuer.audience, issuer=issuer.issuer,
                               required=["exp", "iss", "aud", "sub"], leeway=30)
