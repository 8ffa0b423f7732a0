"""Answering `GET /services/identity`: filter, order and page in the database, count the same.

One `IdentitySearch` serves the gateway's own tables (`store.py`) or an external table
(`source_sql.py`); both give a PropertyMap and a way to turn the selected rows into JSON.
The page and, when the page does not show the total by itself, the count run as one read
(`storage/reads.py`): one thread hop on SQLite, the statements' own round trips on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select

from servicegate.identity.odata import DEFAULT_LIMITS, Limits, parse
from servicegate.identity.ordering import order_clauses, paging, parse_orderby
from servicegate.identity.properties import PropertyMap
from servicegate.identity.sqlbuild import compile_filter
from servicegate.storage.reads import Reads

# Given the selected rows of one page, return each identity as JSON bytes, in order.
Render = Callable[[Sequence[Sequence[Any]]], Awaitable[list[bytes]]]


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
    def __init__(self, reads: Reads, properties: PropertyMap, columns: Sequence[Any],
                 render: Render, limits: Limits = DEFAULT_LIMITS) -> None:
        self.reads = reads
        self.properties = properties
        self.columns = list(columns)
        self.render = render
        self.limits = limits
        self.dialect = reads.dialect

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
        total, rows = await self.reads.page_and_total(page_stmt, count_stmt, query.skip,
                                                      query.top)
        return Page(query.skip, int(total), await self.render(rows) if rows else [])

    async def search(self, filter_text: str | None = None, orderby: str | None = None,
                     skip: str | None = None, top: str | None = None) -> Page:
        return await self.run(self.prepare(filter_text, orderby, skip, top))
