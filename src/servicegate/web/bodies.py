"""Reading and validating request bodies into clear 400 problems."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from servicegate.problems import Problem
from servicegate.validation import describe

M = TypeVar("M", bound=BaseModel)


async def json_body(request: Request, *, required: bool = True) -> Any:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise Problem(400, "a JSON body is required")
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"malformed JSON: {exc}", title="Malformed JSON") from None


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
