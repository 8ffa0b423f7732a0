"""`pipeline`: named steps of any action type, in order; later steps see earlier results."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from servicegate.actions.base import Action, ActionResult, ActionSpec, ActionType, BuildContext, Invocation
from servicegate.actions.errors import action_problem
from servicegate.actions.headers import compile_headers, render_headers
from servicegate.actions.registry import build, register
from servicegate.expressions import Condition, compile_value
from servicegate.problems import Problem


class PipelineResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Any = 200
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None


class PipelineSpec(ActionSpec):
    """Run steps in order. Each step is an action with a `name` (and optionally `when`)."""

    type: Literal["pipeline"]
    steps: list[StepSpec] = Field(min_length=1, max_length=50)  # noqa: F821 - set by definitions.models
    response: PipelineResponse | None = Field(
        None, description="Answer built from `steps.<name>.body` etc.; default: the last "
        "step's result")

    @field_validator("steps")
    @classmethod
    def _named_uniquely(cls, steps: list[ActionSpec]) -> list[ActionSpec]:
        seen: set[str] = set()
        for index, step in enumerate(steps):
            if not step.name:
                raise ValueError(f"step {index} needs a name")
            if step.name in seen:
                raise ValueError(f"step name {step.name!r} is used twice")
            seen.add(step.name)
        return steps


class Step:
    __slots__ = ("action", "name", "when")

    def __init__(self, name: str, when: Condition | None, action: Action) -> None:
        self.name = name
        self.when = when
        self.action = action


class PipelineAction(Action):
    def __init__(self, spec: PipelineSpec, ctx: BuildContext, where: str) -> None:
        self.definition = ctx.definition
        self.steps: list[Step] = []
        for index, step in enumerate(spec.steps):
            at = f"{where}.steps[{index}]"
            when = Condition(step.when, f"{at}.when") if step.when else None
            self.steps.append(Step(step.name or str(index), when, build(step, ctx, at)))
        self.response = None
        if spec.response is not None:
            self.r_status = compile_value(spec.response.status, f"{where}.response.status")
            self.r_headers = compile_headers(spec.response.headers, f"{where}.response.headers")
            self.r_body = compile_value(spec.response.body, f"{where}.response.body")
            self.response = spec.response

    def captured_headers(self) -> set[str]:
        return set().union(*(step.action.captured_headers() for step in self.steps))

    async def run(self, invocation: Invocation) -> ActionResult:
        variables = invocation.variables
        last: ActionResult | None = None
        for step in self.steps:
            if step.when is not None and not step.when.holds(variables):
                continue
            try:
                result = await step.action.run(invocation)
            except Problem as exc:
                raise action_problem(
                    exc.status, f"step {step.name!r} of definition {self.definition!r} failed: "
                    f"{exc.detail}", self.definition, step=step.name) from None
            if result.status >= 400:
                raise action_problem(
                    result.status if result.status < 500 else 502,
                    f"step {step.name!r} of definition {self.definition!r} failed: it answered "
                    f"{result.status}", self.definition, step=step.name)
            invocation.steps[step.name] = result.as_variables()
            last = result
        if self.response is None:
            return last or ActionResult(200, {}, None)
        status = self.r_status.render(variables)
        try:
            code = int(status)
        except (TypeError, ValueError):
            raise action_problem(500, f"definition {self.definition!r}: response.status must be "
                                 "a number", self.definition) from None
        headers = render_headers(self.r_headers, variables, self.definition) if self.r_headers else {}
        return ActionResult(code, headers, self.r_body.render(variables))


TYPE = register(ActionType("pipeline", PipelineSpec, PipelineAction))
