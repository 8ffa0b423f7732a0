"""What every action type shares: its spec model, the compiled action, the result, the invocation."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field

from servicegate.actions.context import InvocationContext
from servicegate.config import Settings
from servicegate.expressions import Encoded

if TYPE_CHECKING:  # (for the annotations only: compiling actions needs no database or client)
    import aiohttp

    from servicegate.storage.databases import NamedDatabases
    from servicegate.webhooks.publisher import EventPublisher

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


class ActionSpec(BaseModel):
    """Keys every action accepts. `name` and `when` matter only for pipeline steps."""

    model_config = ConfigDict(extra="forbid")

    type: str
    name: str | None = Field(None, pattern=NAME_PATTERN,
                             description="Step name (pipeline steps only; required there)")
    when: str | None = Field(None, description="Pipeline steps only: a condition such as "
                             "`steps.lookup.body.count > 0`; the step is skipped when false")


@dataclass(slots=True)
class ActionResult:
    """What an action produced: a JSON `body`, or `raw` bytes with their media type."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    raw: bytes | None = None
    media_type: str | None = None

    def parsed_body(self) -> Any:
        """The body as templates see it: JSON parsed when it is JSON, else text."""
        if self.body is not None or self.raw is None:
            return self.body
        if self.media_type and "json" in self.media_type:
            try:
                return orjson.loads(self.raw)
            except orjson.JSONDecodeError:
                pass
        return self.raw.decode("utf-8", errors="replace")

    def as_variables(self) -> dict[str, Any]:
        return {"status": self.status, "headers": dict(self.headers), "body": self.parsed_body()}


class ActionServices(Protocol):
    """What actions use of the running gateway; the runtime provides it."""

    @property
    def http(self) -> aiohttp.ClientSession:
        """The pooled client for upstream calls."""
        ...

    @property
    def public_http(self) -> aiohttp.ClientSession:
        """The pooled client for upstreams whose host a template chooses: its resolver
        refuses non-public addresses."""
        ...

    @property
    def databases(self) -> NamedDatabases:
        """The databases `sql` actions name."""
        ...

    @property
    def events(self) -> EventPublisher:
        """Where `event` actions publish."""
        ...


class Invocation:
    """One run of a definition's action: the context, the services and what steps produced."""

    __slots__ = ("_variables", "context", "definition", "env_names", "services", "steps")

    def __init__(self, definition: str, context: InvocationContext, services: ActionServices,
                 env_names: tuple[str, ...] = ()) -> None:
        self.definition = definition
        self.context = context
        self.services = services
        self.env_names = env_names
        self.steps: dict[str, dict[str, Any]] = {}
        self._variables: dict[str, Any] | None = None

    @property
    def variables(self) -> dict[str, Any]:
        """The names templates and expressions see (built once per invocation)."""
        if self._variables is None:
            ctx = self.context
            self._variables = {
                "definition": self.definition,
                "method": ctx.method,
                "subpath": Encoded(ctx.subpath),
                "segments": list(ctx.segments),
                "query": ctx.query_first(),
                "query_all": ctx.query_all(),
                "headers": dict(ctx.headers),
                "body": ctx.body,
                "raw": ctx.raw_body.decode("utf-8", errors="replace"),
                "form": ctx.form,
                "principal": ctx.principal,
                "env": {name: os.environ.get(name) for name in self.env_names},
                "steps": self.steps,
                "now": ctx.now,
                "request_id": ctx.request_id,
            }
        return self._variables

    # Convenience for python handlers: `ctx.body`, `ctx.query`, `ctx.steps`, ...
    @property
    def body(self) -> Any:
        return self.context.body

    @property
    def query(self) -> dict[str, str]:
        return self.variables["query"]  # type: ignore[no-any-return]

    @property
    def principal(self) -> dict[str, Any] | None:
        return self.context.principal

    @property
    def env(self) -> dict[str, str | None]:
        return self.variables["env"]  # type: ignore[no-any-return]


class Action:
    """A compiled action: everything checked and compiled at load; `run` per request."""

    #: The longest `run` can take when the action enforces that itself (0: it never waits;
    #: an upstream call: its own timeout), or None. `invoke` arms no timer of its own when
    #: this bound keeps within the definition's timeout.
    max_seconds: float | None = None

    async def run(self, invocation: Invocation) -> ActionResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def captured_headers(self) -> set[str]:
        """Request headers this action needs in the context (e.g. forwarded upstream)."""
        return set()


def gateway_variables(settings: Settings) -> dict[str, Any]:
    """`gateway` in a definition's templates: the gateway's own address, from `[server]`."""
    server = settings.server
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(server.host, server.host)  # noqa: S104
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return {"url": f"http://{host}:{server.port}{server.base_path}", "port": server.port,
            "base_path": server.base_path}


@dataclass(slots=True)
class BuildContext:
    """What compiling an action may consult: settings and where the definition came from."""

    settings: Settings
    definition: str
    directory: Path | None = None
    build_step: Callable[[ActionSpec, str], Action] | None = None


@dataclass(frozen=True, slots=True)
class ActionType:
    name: str
    model: type[ActionSpec]
    build: Callable[[Any, BuildContext, str], Action]
