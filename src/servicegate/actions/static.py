"""`static`: answer a fixed (templated) status, headers and body."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from servicegate.actions.base import Action, ActionResult, ActionSpec, ActionType, BuildContext, Invocation
from servicegate.actions.headers import compile_headers, render_headers
from servicegate.actions.registry import register
from servicegate.expressions import compile_value


class StaticSpec(ActionSpec):
    """Answer without calling anything."""

    type: Literal["static"]
    status: int = Field(200, ge=100, le=599)
    headers: dict[str, str] = Field(default_factory=dict, description="Templated header values")
    body: Any = Field(None, description="Any JSON value; strings may be templates")


class StaticAction(Action):
    def __init__(self, spec: StaticSpec, ctx: BuildContext, where: str) -> None:
        self.definition = ctx.definition
        self.status = spec.status
        self.headers = compile_headers(spec.headers, f"{where}.headers")
        self.body = compile_value(spec.body, f"{where}.body")

    async def run(self, invocation: Invocation) -> ActionResult:
        variables = invocation.variables
        headers = render_headers(self.headers, variables, self.definition) if self.headers else {}
        return ActionResult(self.status, headers, self.body.render(variables))


TYPE = register(ActionType("static", StaticSpec, StaticAction))
