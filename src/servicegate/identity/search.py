"""Answering `GET /services/identity`: filter, order and page in the database, count the same.

One `IdentitySearch` serves the gateway's own tables (`store.py`) or an external table
(`source_sql.py`); both give a PropertyMap and a way to turn the selected rows into JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from servicegate.identity.odata import DEFAULT_LIMITS, Limits, parse
from servicegate.identity.ordering import order_clauses, paging, parse_orderby
from servicegate.identity.properties import PropertyMap
from servicegate.identity.sqlbuild import compile_filter

# Given the selected rows of one page, return each identity as JSON bytes, in order.
Render = Callable[[AsyncConnection, Sequence[Row[Any]]], Awaitable[list[bytes]]]


@dataclass(frozen=True)
class Query:
    where: ColumnElement[bool]
    order: list[Any]
    skip: int
    top: int


@dataclass(frozen=True)
class Page:
    skip: int
    total: int
    items: list[bytes]

    def to_json(self) -> bytes:
        head = b'{"count":%d,"skip":%d,"total":%d,"value":[' % (len(self.items), self.skip,
                                                                 self.total)
        return head + b",".join(self.items) + b"]}"


class IdentitySearch:
    def __init__(self, engine: AsyncEngine, properties: PropertyMap, columns: Sequence[Any],
                 render: Render, limits: Limits = DEFAULT_LIMITS) -> None:
        self.engine = engine
        self.properties = properties
        self.columns = list(columns)
        self.render = render
        self.limits = limits
        self.dialect = engine.dialect.name

    def prepare(self, filter_text: str | None, orderby: str | None, skip: str | None,
                top: str | None) -> Query:
        """Validate every parameter (QueryError with the position) before touching the database."""
        tree = parse(filter_text or "", self.limits)
        where = compile_filter(tree, self.properties, self.dialect)
        keys = parse_orderby(orderby, self.properties)
        order = order_clauses(keys, self.properties.key, self.dialect)
        skip_n, top_n = paging(skip, top)
        return Query(where, order, skip_n, top_n)

    def statements(self, query: Query) -> tuple[Any, Any]:
        table = self.properties.table
        count = select(func.count()).select_from(table).where(query.where)
        page = (select(*self.columns).where(query.where).order_by(*query.order)
                .limit(query.top).offset(query.skip))
        return count, page

    async def run(self, query: Query) -> Page:
        count_stmt, page_stmt = self.statements(query)
        async with self.engine.connect() as conn:
            total = int((await conn.execute(count_stmt)).scalar_one())
            items: list[bytes] = []
            if query.top > 0 and total > query.skip:
                rows = (await conn.execute(page_stmt)).all()
                items = await self.render(conn, rows)
        return Page(query.skip, total, items)

    async def search(self, filter_text: str | None = None, orderby: str | None = None,
                     skip: str | None = None, top: str | None = None) -> Page:
        return await self.run(self.prepare(filter_text, orderby, skip, top))
