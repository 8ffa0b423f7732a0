"""Reading and validating request bodies into clear 400 problems."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from servicegate.problems import Problem
from servicegate.validation import describe

M = TypeVar("M", bound=BaseModel)


#: what `[limits] max_json_depth` defaults to; RequestContext puts the configured value in
#: each request's state
DEFAULT_MAX_DEPTH = 64


def max_depth_of(request: Request) -> int:
    depth: int = request.scope.get("state", {}).get("max_json_depth", DEFAULT_MAX_DEPTH)
    return depth


def parse_json(raw: bytes, max_depth: int) -> Any:
    """Every JSON request body is parsed here: a 400 problem when it is malformed or nested
    deeper than `max_depth` (orjson parses up to 1024 levels but serialises only 254, so a
    deeper body would fail later, when an answer, a job or an event is written)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"malformed JSON: {exc}", title="Malformed JSON") from None
    # Each level opens a bracket: a body with few brackets (counted in C) cannot be too deep.
    if raw.count(b"[") + raw.count(b"{") > max_depth and _deeper_than(value, max_depth):
        raise Problem(400, f"the JSON body is nested deeper than {max_depth} levels",
                      title="Malformed JSON", maxDepth=max_depth)
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels; iterative, so that no
    document can exhaust the stack."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


async def json_body(request: Request, *, required: bool = True) -> Any:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise Problem(400, "a JSON body is required")
        return None
    return parse_json(raw, max_depth_of(request))


def pointer(loc: tuple[Any, ...]) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in loc) if loc else ""


def validated(model: type[M], data: Any, context: dict[str, Any] | None = None) -> M:
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        errors = [
            {"pointer": pointer(tuple(e["loc"])), "message": describe(e, model)}
            for e in exc.errors(include_url=False)
        ]
        raise Problem(
            400,
            f"the request body is invalid ({len(errors)} error{'s' if len(errors) > 1 else ''})",
            title="Validation failed",
            errors=errors,
        ) from None


async def parse(request: Request, model: type[M], context: dict[str, Any] | None = None) -> M:
    return validated(model, await json_body(request), context)
