"""The filter syntax tree. Every node keeps the character position (0-based) where it starts.

Positions take no part in equality, so a printed and re-parsed tree compares equal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal as TypingLiteral

LiteralKind = TypingLiteral["string", "int", "float", "bool", "null", "date"]
CompareOp = TypingLiteral["eq", "ne", "gt", "ge", "lt", "le"]
COMPARE_OPS: tuple[CompareOp, ...] = ("eq", "ne", "gt", "ge", "lt", "le")


@dataclass(frozen=True)
class Literal:
    kind: LiteralKind
    value: str | int | float | bool | dt.date | None
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Path:
    """A property path as written: `name/lastName`, `fullname`, `a/city` (lambda variable)."""

    segments: tuple[str, ...]
    pos: int = field(default=0, compare=False)

    @property
    def text(self) -> str:
        return "/".join(self.segments)


@dataclass(frozen=True)
class Call:
    """A function call: contains, startswith, endswith, tolower, toupper."""

    name: str
    args: tuple[Node, ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Compare:
    op: CompareOp
    left: Node
    right: Node
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class In:
    operand: Node
    values: tuple[Literal, ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class BoolOp:
    op: TypingLiteral["and", "or"]
    left: Node
    right: Node
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Not:
    operand: Node
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Lambda:
    """`collection/any(v: body)`, `collection/all(v: body)`; `any()` has no variable or body."""

    kind: TypingLiteral["any", "all"]
    collection: Path
    variable: str | None
    body: Node | None
    pos: int = field(default=0, compare=False)


Node = Literal | Path | Call | Compare | In | BoolOp | Not | Lambda
