"""Turn request credentials into a Principal, without a database round trip per request.

Lookups are cached for `[auth] cache_ttl` (default 5 s). Disabling a client or revoking a key
clears this node's cache at once; other nodes see it when their entries expire.

API key outcomes are cached by the presented key itself, so its SHA-256 digest is computed
only on a miss (the database is looked up by digest, compared in constant time there). A
dict look-up by string compares only after the (process-keyed) hashes match, so it tells an
attacker nothing about valid keys; and a presented key is held no longer than `cache_ttl`:
a timer purges expired entries then.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from cachetools import TLRUCache, TTLCache

from servicegate.auth import credentials
from servicegate.auth.clients import ClientRecord, ClientStore, NotFound
from servicegate.auth.external import ExternalIssuers
from servicegate.auth.principal import Principal
from servicegate.auth.scopes import grants
from servicegate.auth.tokens import (
    TokenError,
    TokenIssuer,
    looks_like_jwt,
    scopes_of,
    unverified_header_and_issuer,
)


def external_principal_id(issuer: str, client_id: str) -> str:
    """A stable id (at most 64 characters) for a client of an external issuer: the issuer's
    hash keeps two providers' clients apart; long client ids are hashed too."""
    issuer_tag = hashlib.sha256(issuer.encode()).hexdigest()[:10]
    if len(client_id) > 48 or not client_id.isprintable():
        client_id = hashlib.sha256(client_id.encode()).hexdigest()[:48]
    return f"ext-{issuer_tag}-{client_id}"


class Unauthenticated(Exception):
    """No or bad credentials; the message is safe to show the caller."""


_MISSING = object()
CACHE_SIZE = 50_000


def _key_outcome(client: ClientRecord | None) -> Principal | str:
    """What an API key of this client authenticates as, or the refusal's message."""
    if client is None:
        return "invalid API key"
    if not client.enabled:
        return "client disabled"
    return Principal(client.id, client.name, frozenset(client.scopes), "api_key")


class Authenticator:
    def __init__(
        self,
        store: ClientStore,
        issuer: TokenIssuer,
        external: ExternalIssuers,
        cache_ttl: float,
    ) -> None:
        self.store = store
        self.issuer = issuer
        self.external = external
        self.cache_ttl = cache_ttl
        self._keys: TTLCache[str, Principal | str] = TTLCache(CACHE_SIZE, cache_ttl)
        self._key_lookups: dict[str, asyncio.Future[Principal | str]] = {}
        self._clients: TTLCache[str, ClientRecord | None] = TTLCache(CACHE_SIZE, cache_ttl)
        # a token's claims are kept no longer than the token lives
        self._tokens: TLRUCache[str, dict[str, Any]] = TLRUCache(
            CACHE_SIZE, lambda _token, claims, now: now + min(
                cache_ttl, float(claims["exp"]) - time.time()))

    def forget_all(self) -> None:
        """Called after any change to clients or keys on this node."""
        self._keys.clear()
        self._clients.clear()
        self._tokens.clear()

    async def _look_up_key(self, api_key: str) -> Principal | str:
        """One database lookup per key at a time: requests that miss the cache together (as
        they all do when a busy key's entry expires) wait for the first one's answer."""
        while (pending := self._key_lookups.get(api_key)) is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this request was cancelled, not the lookup
                # the request that was looking it up went away: look it up here
        loop = asyncio.get_running_loop()
        lookup: asyncio.Future[Principal | str] = loop.create_future()
        self._key_lookups[api_key] = lookup
        try:
            entry = _key_outcome(await self.store.by_key_digest(credentials.key_digest(api_key)))
        except asyncio.CancelledError:
            lookup.cancel()
            raise
        except BaseException as exc:
            lookup.set_exception(exc)
            lookup.exception()  # retrieved: waiters, if any, raise it themselves
            raise
        finally:
            del self._key_lookups[api_key]
        lookup.set_result(entry)
        self._keys[api_key] = entry
        # The cache drops expired entries only when it is written again: purge then.
        loop.call_later(self.cache_ttl, self._keys.expire)
        return entry

    async def authenticate(
        self, api_key: str | None, authorization: str | None
    ) -> Principal:
        if api_key:
            return await self._by_api_key(api_key)
        if not authorization:
            raise Unauthenticated("credentials required")
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            raise Unauthenticated("use X-API-Key or Authorization: Bearer")
        if looks_like_jwt(value):
            return await self._by_token(value)
        return await self._by_api_key(value)

    async def _by_api_key(self, api_key: str) -> Principal:
        if len(api_key) > 200:
            raise Unauthenticated("invalid API key")
        # The cache holds the (immutable) principal, or why the key is refused: a hit builds
        # nothing and hashes nothing.
        entry = self._keys.get(api_key, _MISSING)
        if entry is _MISSING:
            entry = await self._look_up_key(api_key)
        if isinstance(entry, Principal):
            return entry
        raise Unauthenticated(entry)

    async def client(self, client_id: str) -> ClientRecord | None:
        client = self._clients.get(client_id, _MISSING)
        if client is _MISSING:
            try:
                client = await self.store.get(client_id)
            except NotFound:
                client = None
            self._clients[client_id] = client
        return client  # type: ignore[return-value]

    async def _by_token(self, token: str) -> Principal:
        if len(token) > 8192:
            raise Unauthenticated("token too large")
        cached = self._tokens.get(token, None)
        try:
            if cached is not None:
                claims = cached
            else:
                header, iss = unverified_header_and_issuer(token)
                if iss == self.issuer.issuer:
                    claims = self.issuer.verify(token, header)
                elif self.external.knows(iss):
                    claims = await self.external.verify(token, header, iss)
                else:
                    raise TokenError("token issuer not accepted")
                self._tokens[token] = claims
        except TokenError as exc:
            raise Unauthenticated(str(exc)) from None
        sub = str(claims["sub"])
        scopes = scopes_of(claims)
        if claims["iss"] != self.issuer.issuer:
            client_id = str(claims.get("client_id") or claims.get("azp") or sub)
            return Principal(external_principal_id(str(claims["iss"]), client_id), client_id,
                             scopes, "external", issuer=str(claims["iss"]))
        client = await self.client(sub)
        if client is None or not client.enabled:
            raise Unauthenticated("client disabled or deleted")
        # A token never grants more than its client holds now: it keeps each of its scopes
        # that the client's scopes still imply (`services` implies `services:<name>`, so a
        # token narrowed to `services:hello` keeps it).
        held = frozenset(client.scopes)
        return Principal(client.id, client.name,
                         frozenset(s for s in scopes if grants(held, s)), "token")
