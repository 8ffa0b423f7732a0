"""`invoke(definition, context, services)`: run a definition's action once, independent of HTTP.

The services and callback endpoints call it; a job worker rebuilds the context from JSON and
calls it the same way.
"""

from __future__ import annotations

import asyncio

import structlog
from jinja2 import TemplateError

from servicegate.actions.base import ActionResult, ActionServices, Invocation
from servicegate.actions.context import InvocationContext
from servicegate.actions.errors import action_problem
from servicegate.definitions.compiled import CompiledDefinition
from servicegate.expressions import TemplateFailure
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
