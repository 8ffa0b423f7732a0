"""`invoke(definition, context, services)`: run a definition's action once, independent of HTTP.

The services and callback endpoints call it; a job worker rebuilds the context from JSON and
calls it the same way.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from jinja2 import TemplateError

from servicegate.actions.base import ActionResult, ActionServices, Invocation
from servicegate.actions.context import InvocationContext
from servicegate.actions.errors import action_problem
from servicegate.definitions.compiled import CompiledDefinition
from servicegate.expressions import MissingValue, TemplateFailure
from servicegate.problems import Problem

log = structlog.get_logger("servicegate.invoke")


async def invoke(definition: CompiledDefinition, context: InvocationContext,
                 services: ActionServices) -> ActionResult:
    invocation = Invocation(definition.name, context, services, definition.env_names)
    try:
        bound = definition.action.max_seconds
        if bound is not None and bound <= definition.timeout:
            return await definition.action.run(invocation)
        async with asyncio.timeout(definition.timeout):
            return await definition.action.run(invocation)
    except TimeoutError:
        raise timed_out(definition) from None
    except TemplateFailure as exc:
        if isinstance(exc.cause, MissingValue):
            lacking = _request_value(invocation.variables, exc.cause)
            if lacking is not None:
                raise action_problem(
                    400, f"the request lacks {lacking}{_where(lacking, definition.name)}, "
                    f"which definition {definition.name!r} needs", definition.name,
                    missing=lacking, where=exc.where) from None
        # The cause names the template location, never the values it was rendering.
        # Only Jinja's own messages are logged: they name variables, never their values.
        message = str(exc.cause)[:300] if isinstance(exc.cause, TemplateError) else None
        log.error("template_failed", definition=definition.name, where=exc.where,
                  error=type(exc.cause).__name__, message=message, trace_id=context.request_id)
        raise action_problem(
            500, f"a template or expression failed in definition {definition.name!r} "
            f"({exc.where}); quote the traceId", definition.name, where=exc.where) from None


def timed_out(definition: CompiledDefinition) -> Problem:
    """The 504 problem of a definition that ran past its timeout."""
    return action_problem(
        504, f"definition {definition.name!r} did not finish within {definition.timeout:g}s",
        definition.name)


# What a request brings: a template that finds a value missing in one of these was not given
# it by the caller (400); any other missing value is the definition's mistake (500).
_REQUEST_VALUES = ("segments", "query", "query_all", "headers", "body", "form")


def _request_value(variables: dict[str, Any], cause: MissingValue) -> str | None:
    """The missing value as the template would name it (`segments[0]`, `body.account.id`),
    when it was looked up in what the request brought."""
    if not (cause.obj is None or isinstance(cause.obj, dict | list)):
        return None  # an unknown variable (`missing`), or an attribute of a plain value
    for root in _REQUEST_VALUES:
        # iterative: a JSON body may be deep
        stack: list[tuple[Any, str]] = [(variables.get(root), root)]
        while stack:
            value, path = stack.pop()
            if value is cause.obj:
                return path + _step(cause.name)
            if isinstance(value, dict):
                stack.extend((v, path + _step(k)) for k, v in value.items())
            elif isinstance(value, list):
                stack.extend((v, f"{path}[{i}]") for i, v in enumerate(value))
    return None


def _step(name: Any) -> str:
    if isinstance(name, int):
        return f"[{name}]"
    if isinstance(name, str) and name.isidentifier():
        return f".{name}"
    return f"[{name!r}]"


def _where(lacking: str, definition: str) -> str:
    """Where the caller puts the value, for those a request carries outside its body."""
    root, _, rest = lacking.partition("[")
    if root == "segments" and rest[:-1].isdigit():
        return f" (path segment {int(rest[:-1]) + 1} after /services/{definition})"
    root, _, rest = lacking.partition(".")
    if root in ("query", "query_all") and rest:
        return f" (query parameter {rest})"
    if root == "headers" and rest:
        return f" (header {rest})"
    return ""
