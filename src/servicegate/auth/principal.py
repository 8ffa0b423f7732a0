"""Who is calling: the result of authentication, carried through a request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class Principal:
    client_id: str
    name: str
    scopes: frozenset[str]
    via: Literal["api_key", "token", "external"]
    issuer: str | None = None
    #: the scopes sorted, once (principals are cached; `as_context` runs per invocation)
    sorted_scopes: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sorted_scopes", tuple(sorted(self.scopes)))

    def as_context(self) -> dict[str, object]:
        """A new dict each time: a python handler may change what it is given."""
        return {
            "client_id": self.client_id,
            "name": self.name,
            "scopes": list(self.sorted_scopes),
            "via": self.via,
        }
