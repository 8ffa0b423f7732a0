"""`$orderby`, `$skip` and `$top`: parsed with positions, turned into ORDER BY / LIMIT / OFFSET.

Every ordering ends with the identity id, so equal keys never make pages overlap or skip.
Nulls sort as if larger than any value (last ascending, first descending) on both backends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement

from servicegate.identity.odata.errors import QueryError
from servicegate.identity.properties import Property, PropertyMap

DEFAULT_TOP = 25
MAX_TOP = 100
MAX_SKIP = 10_000_000
MAX_ORDER_KEYS = 8
MAX_ORDERBY_LENGTH = 512
_ITEM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_/]*)(?:\s+([A-Za-z]+))?\s*(?:,|$)")


@dataclass(frozen=True)
class OrderKey:
    prop: Property
    descending: bool


def parse_orderby(text: str | None, properties: PropertyMap) -> list[OrderKey]:
    if text is None or not text.strip():
        return []
    if len(text) > MAX_ORDERBY_LENGTH:
        raise QueryError(f"longer than {MAX_ORDERBY_LENGTH} characters", MAX_ORDERBY_LENGTH,
                         "$orderby")
    keys: list[OrderKey] = []
    pos = 0
    while pos < len(text):
        m = _ITEM.match(text, pos)
        if not m or m.end() == pos:
            bad = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise QueryError("expected 'property [asc|desc]' separated by commas", bad, "$orderby")
        name, direction = m.group(1), (m.group(2) or "asc").lower()
        name_pos = m.start(1)
        if direction not in ("asc", "desc"):
            raise QueryError(f"expected asc or desc, not {m.group(2)!r}", m.start(2), "$orderby")
        prop = properties.properties.get(name.lower())
        if prop is None:
            hint = properties.suggest(name)
            raise QueryError(f"unknown property {name!r}{hint}", name_pos, "$orderby")
        if prop.collection is not None:
            raise QueryError(f"cannot order by {prop.path}: an identity may have several",
                             name_pos, "$orderby")
        keys.append(OrderKey(prop, direction == "desc"))
        if len(keys) > MAX_ORDER_KEYS:
            raise QueryError(f"at most {MAX_ORDER_KEYS} keys", name_pos, "$orderby")
        pos = m.end()
        if text[m.end() - 1 : m.end()] == "," and not text[pos:].strip():
            raise QueryError("a property is missing after ','", m.end() - 1, "$orderby")
    return keys


def order_clauses(keys: list[OrderKey], key_column: ColumnElement, dialect: str) -> list:
    clauses = []
    for k in keys:
        col = k.prop.column
        clause = col.desc() if k.descending else col.asc()
        if k.prop.nullable and dialect == "sqlite":  # PostgreSQL sorts nulls this way already
            clause = clause.nulls_first() if k.descending else clause.nulls_last()
        clauses.append(clause)
    if not any(k.prop.column is key_column for k in keys):
        clauses.append(key_column.asc())
    return clauses


def parse_int(text: str | None, parameter: str, default: int, maximum: int) -> int:
    if text is None:
        return default
    if not text:
        raise QueryError("is empty; give a whole number or leave it out", 0, parameter)
    if len(text) > 12 or not text.isascii() or not text.isdigit():
        bad = next((i for i, c in enumerate(text) if not c.isdigit() or not c.isascii()), 0)
        what = "must not be negative" if text.startswith("-") else "must be a whole number"
        raise QueryError(what, bad, parameter)
    value = int(text)
    if value > maximum:
        raise QueryError(f"must be at most {maximum}", 0, parameter)
    return value


def paging(skip: str | None, top: str | None) -> tuple[int, int]:
    return (parse_int(skip, "$skip", 0, MAX_SKIP), parse_int(top, "$top", DEFAULT_TOP, MAX_TOP))
