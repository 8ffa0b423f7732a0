"""`python`: call `module:function` (async awaited, sync in the thread pool) with the invocation."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import re
from typing import Any, Literal

import structlog
from pydantic import Field

from servicegate.actions.base import Action, ActionResult, ActionSpec, ActionType, BuildContext, Invocation
from servicegate.actions.errors import action_problem
from servicegate.actions.registry import register
from servicegate.problems import Problem

log = structlog.get_logger("servicegate.actions.python")
_HANDLER = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class PythonSpec(ActionSpec):
    """Call a Python function; it receives the invocation and returns a JSON value or an
    `ActionResult(status, headers, body)`."""

    type: Literal["python"]
    handler: str = Field(pattern=_HANDLER.pattern, description="module:function")


def load_handler(handler: str) -> Any:
    module_name, _, attribute = handler.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ValueError(f"handler {handler!r}: cannot import {module_name!r}: "
                         f"{type(exc).__name__}: {exc}") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ValueError(f"handler {handler!r}: {module_name} has no function {attribute!r}")
    return function


class PythonAction(Action):
    def __init__(self, spec: PythonSpec, ctx: BuildContext, where: str) -> None:
        self.definition = ctx.definition
        try:
            self.function = load_handler(spec.handler)
        except ValueError as exc:
            raise ValueError(f"{where}.handler: {exc}") from None
        self.handler = spec.handler
        self.is_async = inspect.iscoroutinefunction(self.function)

    async def run(self, invocation: Invocation) -> ActionResult:
        try:
            if self.is_async:
                value = await self.function(invocation)
            else:
                value = await asyncio.to_thread(self.function, invocation)
        except Problem:
            raise
        except Exception as exc:
            log.error("handler_failed", definition=self.definition, handler=self.handler,
                      trace_id=invocation.context.request_id, exc_info=exc)
            raise action_problem(500, f"definition {self.definition!r}: the handler failed; "
                                 "quote the traceId", self.definition) from None
        if isinstance(value, ActionResult):
            return value
        return ActionResult(200, {}, value)


TYPE = register(ActionType("python", PythonSpec, PythonAction))
