"""Turn an HTTP request into an `InvocationContext` (the only place that knows Starlette)."""

from __future__ import annotations

import time
from base64 import b64encode
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.types import Scope

from servicegate.actions.context import InvocationContext, Via
from servicegate.actions.subpath import UnsafePath, split_raw
from servicegate.auth.principal import Principal
from servicegate.definitions.compiled import CompiledDefinition
from servicegate.web.headermap import header_map
from servicegate.web.problems import ProblemError

_TRUE = ("true", "1")
_FALSE = ("false", "0")


def async_flag(query: list[tuple[str, str]]) -> tuple[bool | None, list[tuple[str, str]]]:
    """Take `async` out of the query: (its value or None, the rest for the action)."""
    flag: bool | None = None
    rest = []
    for key, value in query:
        if key != "async":
            rest.append((key, value))
            continue
        lowered = value.strip().lower()
        if lowered in _TRUE:
            value_flag = True
        elif lowered in _FALSE:
            value_flag = False
        else:
            raise ProblemError(400, f"query parameter async must be true, false, 1 or 0, "
                               f"not {value[:40]!r}")
        if flag is not None and flag != value_flag:
            raise ProblemError(400, "query parameter async is given twice, once true and once "
                               "false; send it once")
        flag = value_flag
    return flag, rest


def subpath_segments(scope: Scope, prefix_segments: int) -> list[str]:
    """Decoded sub-path segments after `/<group>/<name>`, from the raw (undecoded) path."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    text = raw.decode("latin-1").split("?", 1)[0]
    pieces = text.split("/")[1 + prefix_segments:]
    try:
        return split_raw("/".join(pieces))
    except UnsafePath as exc:
        raise ProblemError(400, f"the sub-path is not allowed: {exc}") from None


def query_pairs(scope: Scope) -> list[tuple[str, str]]:
    """`parse_qsl(query, keep_blank_values=True)`; without its per-pair unquoting when there
    is nothing to unquote (no `%`, no `+`: `?async=true` and most queries)."""
    raw = scope.get("query_string", b"")
    if not raw:
        return []
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return parse_qsl(text, keep_blank_values=True)
    return [(name, value) for name, _, value in (p.partition("=") for p in text.split("&") if p)]


def _media_type(scope: Scope) -> str | None:
    by_name = header_map(scope)
    if by_name is not None:
        raw = by_name.get(b"content-type")
    else:  # the first one, as `request.headers.get`
        raw = next((v for n, v in scope["headers"] if n == b"content-type"), None)
    return raw.decode("latin-1").split(";", 1)[0].strip().lower() if raw else None


async def read_body(request: Request, definition: CompiledDefinition, *, any_type: bool
                    ) -> tuple[bytes, Any, dict[str, str] | None]:
    """The raw bytes, the parsed value (JSON, or form values for callbacks), the form."""
    if not may_have_body(request.scope):
        return b"", None, None
    return parse_body(await request.body(), request.scope, definition, any_type=any_type)


def parse_body(raw: bytes, scope: Scope, definition: CompiledDefinition, *, any_type: bool
               ) -> tuple[bytes, Any, dict[str, str] | None]:
    """`read_body` once the bytes are in."""
    if definition.max_bytes is not None and len(raw) > definition.max_bytes:
        raise ProblemError(413, f"request body exceeds the limit of {definition.max_bytes} bytes "
                           f"for definition {definition.name!r}", limit=definition.max_bytes)
    if not raw.strip():
        return raw, None, None
    media = _media_type(scope)
    if any_type:
        if media == "application/x-www-form-urlencoded":
            try:
                form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                return raw, None, None  # still available raw, as any other body
            return raw, form, form
        if not (media and (media == "application/json" or media.endswith("+json"))):
            return raw, None, None
    try:
        return raw, orjson.loads(raw), None
    except orjson.JSONDecodeError as exc:
        raise ProblemError(400, f"malformed JSON: {exc}", title="Malformed JSON") from None


def may_have_body(scope: Scope) -> bool:
    """A Content-Length other than 0 or a Transfer-Encoding: only then is there a body."""
    by_name = header_map(scope)
    if by_name is not None:
        length = by_name.get(b"content-length")
        return (length is not None and length != b"0") or b"transfer-encoding" in by_name
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False


def captured(scope: Scope, definition: CompiledDefinition) -> tuple[dict[str, str], str | None]:
    """The request headers the definition captures, and the content type."""
    wanted = definition.captured_header_bytes
    headers: dict[str, str] = {}
    content_type = None
    by_name = header_map(scope)
    if by_name is not None:  # no name repeats: usually no wanted header is there at all
        value = by_name.get(b"content-type")
        if value is not None:
            content_type = value.decode("latin-1")
        present = wanted.intersection(by_name)
        if len(present) == 1:  # (often `accept`) no order to keep
            for raw_name in present:
                headers[raw_name.decode("latin-1")] = by_name[raw_name].decode("latin-1")
        elif present:
            for raw_name, raw_value in scope["headers"]:  # in the request's order
                if raw_name in present:
                    headers[raw_name.decode("latin-1")] = raw_value.decode("latin-1")
        return headers, content_type
    for raw_name, raw_value in scope["headers"]:  # ASGI names are lowercase bytes
        if raw_name in wanted:
            name = raw_name.decode("latin-1")
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
            if raw_name == b"content-type":
                content_type = value
        elif raw_name == b"content-type":
            content_type = raw_value.decode("latin-1")
    return headers, content_type


def build_context(scope: Scope, definition: CompiledDefinition, via: Via,
                  principal: Principal | None, segments: list[str],
                  query: list[tuple[str, str]], raw: bytes, body: Any,
                  form: dict[str, str] | None) -> InvocationContext:
    headers, content_type = captured(scope, definition)
    # positional (the fields' order): keywords cost as much again here
    return InvocationContext(
        definition.name, via, scope["method"], segments, query, headers, body, raw,
        content_type, form, principal.as_context() if principal else None,
        scope.get("state", {}).get("request_id", ""),
    )


def stored_context(scope: Scope, definition: CompiledDefinition, principal: Principal,
                   segments: list[str], query: list[tuple[str, str]], raw: bytes,
                   body: Any) -> dict[str, Any]:
    """`build_context(...).to_json()` for a `/services` call, without the InvocationContext in
    between: what an asynchronous submission stores (`InvocationContext.from_json` reads it)."""
    headers, content_type = captured(scope, definition)
    stored: dict[str, Any] = {"definition": definition.name, "via": "services",
                              "method": scope["method"], "received_at": time.time(),
                              "principal": principal.as_context()}
    # what `to_json` leaves out when empty (most requests: no sub-path, query, body, headers)
    if segments:
        stored["segments"] = segments
    if query:
        stored["query"] = query  # pairs: JSON arrays, as `to_json` writes them
    if headers:
        stored["headers"] = headers
    if body is not None:
        stored["body"] = body
    if raw:
        stored["raw_body"] = b64encode(raw).decode("ascii")
    if content_type is not None:
        stored["content_type"] = content_type
    request_id = scope.get("state", {}).get("request_id", "")
    if request_id:
        stored["request_id"] = request_id
    return stored
