"""`event`: raise an event built from the request (delivered to every matching webhook).

    action:
      type: event
      event: payment                      # from the catalog (or [webhooks] custom_events)
      data: {invoice: "{{ body.invoice }}", amount: "{{ body.amount }}"}
      id: "payment-{{ body.invoice }}"    # optional: makes a provider's retries idempotent

Answers 202 with `{"eventId", "event"}`; the event is stored durably before the answer.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from servicegate.actions.base import Action, ActionResult, ActionSpec, ActionType, BuildContext, Invocation
from servicegate.actions.errors import action_problem
from servicegate.actions.registry import register
from servicegate.expressions import ExpressionError, compile_value
from servicegate.webhooks.catalog import EventCatalog
from servicegate.webhooks.errors import EventIdConflict

MAX_ID = 200


class EventSpec(ActionSpec):
    """Publish an event to the subscribers of that event."""

    type: Literal["event"]
    event: str = Field(description="Event name from the catalog (GET /webhooks/events); the "
                       "gateway's own events cannot be raised")
    data: Any = Field(None, description="Any JSON value; strings may be templates")
    id: str | None = Field(None, description="Optional templated event id: the same id is "
                           "published once (idempotency for retried callbacks)")
    status: int = Field(202, ge=200, le=299, description="Status of the answer")


class EventAction(Action):
    def __init__(self, spec: EventSpec, ctx: BuildContext, where: str) -> None:
        catalog = EventCatalog(ctx.settings.webhooks.custom_events)
        try:
            self.event = catalog.publishable(spec.event)
        except ValueError as exc:
            raise ExpressionError(f"{where}.event: {exc}") from None
        self.definition = ctx.definition
        self.data = compile_value(spec.data, f"{where}.data")
        self.id = compile_value(spec.id, f"{where}.id") if spec.id is not None else None
        self.status = spec.status

    async def run(self, invocation: Invocation) -> ActionResult:
        variables = invocation.variables
        data = self.data.render(variables)
        event_id = None
        if self.id is not None:
            event_id = str(self.id.render(variables) or "").strip() or None
            if event_id is not None and len(event_id) > MAX_ID:
                raise action_problem(400, f"the event id rendered from this request is longer "
                                     f"than {MAX_ID} characters", self.definition)
        try:
            published = await invocation.services.events.publish(
                self.event, data, id=event_id, source=f"definition:{self.definition}"
            )
        except EventIdConflict as exc:
            raise action_problem(409, str(exc), self.definition) from None
        return ActionResult(self.status, {}, {"eventId": published, "event": self.event})


TYPE = register(ActionType("event", EventSpec, EventAction))
