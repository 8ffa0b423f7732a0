"""Action types. Each module registers itself; to add a type, write `actions/<type>.py`
(a spec model, an `Action`, and `register(ActionType(...))`) and import it here."""

from servicegate.actions import event, http, pipeline, python, sql, static  # noqa: F401 - registration
from servicegate.actions.base import ActionResult, Invocation
from servicegate.actions.context import InvocationContext

__all__ = ["ActionResult", "Invocation", "InvocationContext"]
