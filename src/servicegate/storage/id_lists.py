"""`column IN (<list>)` written so that the statement text does not depend on the list length.

An expanding `IN` renders one placeholder per value, so every batch size is a different
statement: on PostgreSQL (asyncpg prepares and caches statements by their text) each new
length costs a prepare round trip and evicts a cached statement. There the list is sent as
one array parameter, `column = ANY($1)`; SQLite keeps the expanding `IN`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY


def among(column: Any, name: str, dialect: str, values: list[Any] | None = None
          ) -> ColumnElement[bool]:
    """`column` is one of the list bound as `name` (given now as `values`, or at execution)."""
    if dialect == "postgresql":
        param = bindparam(name, type_=ARRAY(column.type)) if values is None else \
            bindparam(name, values, type_=ARRAY(column.type))
        return column == any_(param)
    if values is None:
        return column.in_(bindparam(name, expanding=True))
    return column.in_(bindparam(name, values, expanding=True))
