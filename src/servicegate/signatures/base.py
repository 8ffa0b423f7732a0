"""The verifier interface and its two failures."""

from __future__ import annotations

import os
from collections.abc import Mapping


class SignatureInvalid(Exception):
    """The request's signature is missing, malformed, stale or wrong (answered 401)."""


class SignatureUnavailable(Exception):
    """The secret's environment variable is not set (answered 500, logged)."""


class Verifier:
    secret_env: str

    def secret(self) -> str:
        value = os.environ.get(self.secret_env)
        if not value:
            raise SignatureUnavailable(f"environment variable {self.secret_env} is not set")
        return value

    def verify(self, raw: bytes, headers: Mapping[str, str]) -> None:  # pragma: no cover
        raise NotImplementedError
