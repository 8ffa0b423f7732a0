"""Webhook secrets: the two formats a partner may register and the HMAC key each stands for.

- `whsec_<base64>`: a Standard Webhooks key. The HMAC key is the decoded bytes, which is how
  every Standard Webhooks and svix library reads a secret given to its ordinary constructor.
- anything else: a plain secret of the reference API. The HMAC key is its UTF-8 bytes, as
  receivers built for the reference use it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import secrets

WHSEC = "whsec_"
MIN_KEY_BYTES = 24  # the Standard Webhooks specification's lower bound (192 bits)
GENERATED_KEY_BYTES = 32


def check(secret: str) -> str:
    """The secret as stored, or ValueError saying what is wrong with a `whsec_` one (its
    libraries would fail on it: better refused at registration than on every delivery)."""
    if secret.startswith(WHSEC):
        try:
            key = base64.b64decode(secret[len(WHSEC):], validate=True)
        except (ValueError, binascii.Error):
            raise ValueError("a whsec_ secret is whsec_ followed by standard base64 (A-Z a-z "
                             "0-9 + /, padded with =)") from None
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a whsec_ secret must decode to at least {MIN_KEY_BYTES} bytes, "
                             f"this one has {len(key)}")
    return secret


def generate() -> str:
    """A new `whsec_` secret of 32 random bytes."""
    return WHSEC + base64.b64encode(secrets.token_bytes(GENERATED_KEY_BYTES)).decode("ascii")


@functools.lru_cache(maxsize=1024)
def signing_key(secret: str) -> bytes:
    """The HMAC key a secret stands for. A `whsec_` value stored before such values were
    checked, and not base64, keeps the meaning it had then (its UTF-8 bytes)."""
    if secret.startswith(WHSEC):
        try:
            return base64.b64decode(secret[len(WHSEC):], validate=True)
        except (ValueError, binascii.Error):
            pass
    return secret.encode("utf-8")
