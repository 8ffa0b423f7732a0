"""Generating, hashing and checking client secrets and API keys.

- API keys: `sgk_` + 43 URL-safe characters (256 bits). Stored as SHA-256 hex digests and
  looked up by digest; the lookup result is compared again in constant time.
- Client secrets: `sgs_` + 43 URL-safe characters, stored as argon2id hashes.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

API_KEY_PREFIX = "sgk_"
SECRET_PREFIX = "sgs_"  # noqa: S105 - a prefix, not a secret

_hasher = PasswordHasher()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_client_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def key_hint(api_key: str) -> str:
    """What listings show of a key: its prefix and first characters, never enough to use it."""
    return api_key[: len(API_KEY_PREFIX) + 6] + "…"


def digests_match(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(secret_hash: str, secret: str) -> bool:
    """Constant-time argon2 verification; False on any mismatch or malformed hash."""
    try:
        return _hasher.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def dummy_hash() -> str:
    """A real hash to burn the same time on when the client id is unknown (no timing oracle).
    Made on first use, not at import: hashing costs a third of a second, which every CLI
    command and worker process would otherwise pay at start-up."""
    return _hasher.hash(secrets.token_urlsafe(16))
