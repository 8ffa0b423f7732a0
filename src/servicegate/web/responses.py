"""Fast JSON responses (orjson)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

EMPTY_OBJECT = b"{}"


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        return dumps(content)


_EMPTY = JSONResponse(EMPTY_OBJECT)


def empty_object() -> JSONResponse:
    """The shared `{}` answer (immutable: nothing downstream edits a sent response's headers)."""
    return _EMPTY
