"""`static`: answer a fixed (templated) status, headers and body."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import Field

from servicegate.actions.base import Action, ActionResult, ActionSpec, ActionType, BuildContext, Invocation
from servicegate.actions.headers import compile_headers, render_headers
from servicegate.actions.registry import register
from servicegate.expressions import compile_value, is_literal


class StaticSpec(ActionSpec):
    """Answer without calling anything."""

    type: Literal["static"]
    status: int = Field(200, ge=100, le=599)
    headers: dict[str, str] = Field(default_factory=dict, description="Templated header values")
    body: Any = Field(None, description="Any JSON value; strings may be templates")


class StaticAction(Action):
    max_seconds = 0.0
    def __init__(self, spec: StaticSpec, ctx: BuildContext, where: str) -> None:
        self.definition = ctx.definition
        self.status = spec.status
        self.headers = compile_headers(spec.headers, f"{where}.headers")
        self.body = compile_value(spec.body, f"{where}.body")
        self.fixed: tuple[Any, bytes] | None = None
        if is_literal(self.body) and all(is_literal(v) for _, v in self.headers):
            value = self.body.render({})
            raw = b"{}" if value is None else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
            self.fixed = (value, raw)
            self.fixed_headers = {name: str(v.render({})) for name, v in self.headers}

    async def run(self, invocation: Invocation) -> ActionResult:
        if self.fixed is not None:  # nothing to render: the answer was serialised at load
            # `body` keeps the value for pipeline steps; `raw` is what is sent
            return ActionResult(self.status, dict(self.fixed_headers), self.fixed[0],
                                raw=self.fixed[1], media_type="application/json")
        variables = invocation.variables
        headers = render_headers(self.headers, variables, self.definition) if self.headers else {}
        return ActionResult(self.status, headers, self.body.render(variables))


TYPE = register(ActionType("static", StaticSpec, StaticAction))
