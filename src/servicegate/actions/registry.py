"""The action types the gateway knows; each module in `actions/` registers its own."""

from __future__ import annotations

from functools import reduce
from typing import Annotated, Any

from pydantic import Field

from servicegate.actions.base import Action, ActionSpec, ActionType, BuildContext

_TYPES: dict[str, ActionType] = {}


def register(action_type: ActionType) -> ActionType:
    if action_type.name in _TYPES:
        raise ValueError(f"action type {action_type.name!r} registered twice")
    _TYPES[action_type.name] = action_type
    return action_type


def names() -> list[str]:
    return list(_TYPES)


def spec_union() -> Any:
    """The discriminated union of every registered action model (on `type`)."""
    models = [t.model for t in _TYPES.values()]
    union = reduce(lambda a, b: a | b, models)  # type: ignore[operator,return-value]
    return Annotated[union, Field(discriminator="type")]


def build(spec: ActionSpec, ctx: BuildContext, where: str = "action") -> Action:
    return _TYPES[spec.type].build(spec, ctx, where)
