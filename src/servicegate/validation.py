"""pydantic's validation errors in the words of whoever wrote the configuration or definition:
an unknown key with the nearest known one, a wrong value said plainly."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

_PLAIN = {
    "missing": "is required",
    "dict_type": "must be a mapping (key: value pairs)",
    "model_type": "must be a mapping (key: value pairs)",
    "model_attributes_type": "must be a mapping (key: value pairs)",
    "list_type": "must be a list",
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
}


def nearest(word: str, known: Iterable[str]) -> str | None:
    """The known word a typo most likely meant, if any is close enough."""
    matches = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


def describe(error: ErrorDetails, model: type[BaseModel] | None = None) -> str:
    """One error as a sentence (without its location): what is wrong and, for an unknown
    key or choice, the nearest known one. `model` is the model the location starts in."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    loc = tuple(error["loc"])
    if kind == "extra_forbidden":
        known = fields_at(model, loc[:-1]) if model is not None else set()
        guess = nearest(str(loc[-1]), known)
        return "unknown key" + (f"; did you mean {guess!r}?" if guess else
                                f" (known: {', '.join(sorted(known))})" if known else "")
    if kind == "union_tag_invalid":
        tags = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
        guess = nearest(str(ctx.get("tag")), tags)
        what = str(ctx.get("discriminator", "'type'")).strip("'")
        return (f"unknown {what} {ctx.get('tag')!r}"
                + (f"; did you mean {guess!r}?" if guess else "")
                + (f" (one of {', '.join(tags)})" if tags else ""))
    if kind == "union_tag_not_found":
        what = str(ctx.get("discriminator", "'type'")).strip("'")
        return f"needs a {what!r} key"
    if kind == "value_error":
        return str(ctx.get("error") or error["msg"]).removeprefix("Value error, ")
    if kind == "assertion_error":
        return error["msg"].removeprefix("Assertion failed, ")
    plain = _PLAIN.get(kind)
    if plain is None:
        plain = error["msg"].replace("Input should be", "must be").replace(
            "String should", "must").replace("List should", "must").replace(
            "Value should", "must")
    value = error.get("input")
    if kind != "missing" and isinstance(value, str | int | float | bool) and len(str(value)) < 80:
        plain += f" (not {value!r})"
    return plain


def key_path(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> str:
    """A location as the author wrote it: `action.steps[0].url`, without the tags pydantic
    adds for union members (`action.http.url` names no key `http`)."""
    out = ""
    current: Any = model
    for part in loc:
        is_tag = current is not None and isinstance(part, str) and _is_tag(current, part)
        if not is_tag:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        current = _step(current, part) if current is not None else None
    return out or "(top)"


def _is_tag(annotation: Any, part: str) -> bool:
    options = _options(annotation)
    models = [o for o in options if isinstance(o, type) and issubclass(o, BaseModel)]
    if len(models) < 2:
        return False
    return any(part in typing.get_args(m.model_fields["type"].annotation)
               for m in models if "type" in m.model_fields)


def fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> set[str]:
    """The keys a mapping at `loc` (inside `model`) may have; empty when it cannot be told."""
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return set()
    current = _model_of(current)
    if current is None:
        return set()
    return {f.alias or name for name, f in current.model_fields.items()}


def _step(annotation: Any, part: Any) -> Any:
    """The annotation one location step below `annotation`."""
    options = _options(annotation)
    models = [o for o in options if isinstance(o, type) and issubclass(o, BaseModel)]
    if len(models) == 1:
        for name, field in models[0].model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    if isinstance(part, int):  # an item of a list
        for option in options:
            args = typing.get_args(option)
            if typing.get_origin(option) in (list, tuple) and args:
                return args[0]
        return None
    for option in options:  # a tagged union member (pydantic puts its tag in the location)
        member = _model_of(option)
        if member is not None:
            tag = member.model_fields.get("type")
            if tag is not None and part in typing.get_args(tag.annotation):
                return member
        if typing.get_origin(option) is dict:
            return typing.get_args(option)[1]
    return None


def _options(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _options(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [o for a in typing.get_args(annotation) for o in _options(a)]
    return [annotation]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation names (None for a union of several)."""
    models = [o for o in _options(annotation) if isinstance(o, type) and issubclass(o, BaseModel)]
    return models[0] if len(models) == 1 else None
