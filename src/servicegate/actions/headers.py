"""Rendered response/upstream headers: templated values, never a CR or LF."""

from __future__ import annotations

import re
from typing import Any

from servicegate.actions.errors import action_problem
from servicegate.expressions import Value, compile_text

HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
_BREAKS = re.compile(r"[\r\n\x00]")


def compile_headers(headers: dict[str, str], where: str) -> list[tuple[str, Value]]:
    compiled = []
    for name, value in headers.items():
        if not HEADER_NAME.match(name):
            raise ValueError(f"{where}: {name!r} is not a valid header name")
        compiled.append((name, compile_text(str(value), f"{where}.{name}")))
    return compiled


def render_headers(compiled: list[tuple[str, Value]], variables: dict[str, Any],
                   definition: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, template in compiled:
        value = template.render(variables)
        text = "" if value is None else str(value)
        if _BREAKS.search(text):
            raise action_problem(
                400, f"the header {name} rendered by definition {definition!r} contains a line "
                "break; it was not sent", definition,
            )
        out[name] = text
    return out
