"""What an invocation knows about the request: independent of Starlette, storable as JSON.

A job worker rebuilds an `InvocationContext` with `from_json` and calls the same `invoke`.
Environment variables are NOT part of it: they are read when the action runs, so stored
contexts never hold secrets.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from servicegate.actions.subpath import encode_segments

Via = Literal["services", "callback"]


@dataclass(slots=True)
class InvocationContext:
    # api/invocation.py passes the fields positionally: keep their order.
    definition: str
    via: Via
    method: str
    segments: list[str] = field(default_factory=list)
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    raw_body: bytes = b""
    content_type: str | None = None
    form: dict[str, str] | None = None
    principal: dict[str, Any] | None = None
    request_id: str = ""
    received_at: float = field(default_factory=time.time)

    @property
    def now(self) -> str:
        """When the request arrived, ISO 8601 in UTC."""
        return datetime.fromtimestamp(self.received_at, UTC).isoformat()

    @property
    def subpath(self) -> str:
        """The sub-path, each segment percent-encoded again: safe to put into a URL path."""
        return encode_segments(self.segments) if self.segments else ""

    def query_first(self) -> dict[str, str]:
        first: dict[str, str] = {}
        for key, value in self.query:
            first.setdefault(key, value)
        return first

    def query_all(self) -> dict[str, list[str]]:
        every: dict[str, list[str]] = {}
        for key, value in self.query:
            every.setdefault(key, []).append(value)
        return every

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (shallow: on the hot path of every asynchronous submission). Fields
        still at their default are left out (`from_json` restores them): a stored job's context
        is mostly defaults, and every byte of it is written, logged and parsed by the database."""
        data: dict[str, Any] = {"definition": self.definition, "via": self.via,
                                "method": self.method, "received_at": self.received_at}
        for name, default in _DEFAULTS:
            value = getattr(self, name)
            if value != default:
                data[name] = value
        if self.raw_body:
            data["raw_body"] = base64.b64encode(self.raw_body).decode("ascii")
        if self.query:
            data["query"] = [list(pair) for pair in self.query]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InvocationContext:
        values = dict(data)
        values["raw_body"] = base64.b64decode(values.get("raw_body", ""))
        values["query"] = [(k, v) for k, v in values.get("query", [])]
        return cls(**values)


# stored only when not at these defaults (`raw_body` and `query` have their own form)
_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("segments", []), ("headers", {}), ("body", None), ("content_type", None), ("form", None),
    ("principal", None), ("request_id", ""))
