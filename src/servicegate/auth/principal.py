"""Who is calling: the result of authentication, carried through a request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Principal:
    client_id: str
    name: str
    scopes: frozenset[str]
    via: Literal["api_key", "token", "external"]
    issuer: str | None = None

    def as_context(self) -> dict[str, object]:
        return {
            "client_id": self.client_id,
            "name": self.name,
            "scopes": sorted(self.scopes),
            "via": self.via,
        }
