"""Answering `GET /services/identity`: filter, order and page in the database, count the same.

One `IdentitySearch` serves the gateway's own tables (`store.py`) or an external table
(`source_sql.py`, an engine of its own); both give a PropertyMap and a way to turn the
selected rows into JSON. The page and, when the page does not show the total by itself, the
count run on one connection of the engine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from servicegate.identity.odata import DEFAULT_LIMITS, Limits, parse
from servicegate.identity.ordering import order_clauses, paging, parse_orderby
from servicegate.identity.properties import PropertyMap
from servicegate.identity.selection import Selection, parse_select, project_json
from servicegate.identity.sqlbuild import compile_filter

# Given the selected rows of one page (and the connection that read them, for more of the
# same identities), return each identity as JSON bytes, in order.
Render = Callable[[AsyncConnection, Sequence[Sequence[Any]]], Awaitable[list[bytes]]]


def total_from_page(found: int, skip: int, top: int) -> int | None:
    """The total a page of `found` rows (of at most `top`, after `skip`) shows by itself, or
    None when only a count can tell: a page that is not full ends the results, unless it is
    empty past the start (or no page was asked for). An exact lookup (`idnumber eq ...`)
    then costs one statement instead of two."""
    if top > 0 and found < top and (found > 0 or skip == 0):
        return skip + found
    return None


@dataclass(frozen=True)
class Query:
    where: ColumnElement[bool]
    order: list[Any]
    skip: int
    top: int
    select: Selection | None = None


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
                top: str | None, select: str | None = None) -> Query:
        """Validate every parameter (QueryError with the position) before touching the database."""
        tree = parse(filter_text or "", self.limits)
        where = compile_filter(tree, self.properties, self.dialect)
        keys = parse_orderby(orderby, self.properties)
        order = order_clauses(keys, self.properties.key, self.dialect)
        skip_n, top_n = paging(skip, top)
        return Query(where, order, skip_n, top_n, parse_select(select))

    def statements(self, query: Query) -> tuple[Any, Any]:
        table = self.properties.table
        count = select(func.count()).select_from(table).where(query.where)
        page = (select(*self.columns).where(query.where).order_by(*query.order)
                .limit(query.top).offset(query.skip))
        return count, page

    async def run(self, query: Query) -> Page:
        count_stmt, page_stmt = self.statements(query)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(page_stmt)).all() if query.top > 0 else []
            total = total_from_page(len(rows), query.skip, query.top)
            if total is None:
                total = (await conn.execute(count_stmt)).scalar_one()
            items = await self.render(conn, rows) if rows else []
        if query.select is not None:
            items = [project_json(item, query.select) for item in items]
        return Page(query.skip, int(total), items)

    async def search(self, filter_text: str | None = None, orderby: str | None = None,
                     skip: str | None = None, top: str | None = None,
                     select: str | None = None) -> Page:
        return await self.run(self.prepare(filter_text, orderby, skip, top, select))
