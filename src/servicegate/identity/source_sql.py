"""`[identity] source = "sql"`: search an existing table or view of another database in place.

The operator maps contract properties onto columns (`[identity.sql.columns]`) and, optionally,
an address table (`[identity.sql.addresses]`). The same filter language, ordering and paging
run there, read-only: SQLite connections are `query_only`, PostgreSQL sessions
`default_transaction_read_only`. Unmapped properties are answered as null and are unknown to
filters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Column, Date, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from servicegate.config import ExternalIdentitySource
from servicegate.identity.odata import DEFAULT_LIMITS, Limits
from servicegate.identity.properties import Collection, Property, PropertyMap
from servicegate.identity.search import IdentitySearch
from servicegate.identity_shape import TYPES

_NAME_KEYS = ("firstName", "middleName", "lastName", "companyName", "fullName", "salutation",
              "nameSuffix")
_ADDRESS_KEYS = ("type", "coAddress", "street", "houseNo", "houseNoExtension", "zipCode", "city",
                 "stateCode", "countryCode")
_SQL_TYPES = {"int": Integer, "date": Date, "string": String}


def _table(qualified: str, columns: list[Column]) -> Table:
    schema, _, name = qualified.rpartition(".")
    return Table(name, MetaData(), *columns, schema=schema or None)


def _columns(mapping: dict[str, str], extra: dict[str, Any]) -> list[Column]:
    made: dict[str, Column] = {}
    for name, type_ in extra.items():
        made[name] = Column(name, type_)
    for prop, column in mapping.items():
        if column not in made:
            made[column] = Column(column, _SQL_TYPES[TYPES.get(prop, "string")]())
    return list(made.values())


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


class ExternalSource:
    """Builds the PropertyMap and the renderer for a configured external table."""

    def __init__(self, config: ExternalIdentitySource, engine: AsyncEngine) -> None:
        """`engine`: the external database's own, read-only (`create_read_only_engine`)."""
        self.config = config
        self.engine = engine
        cols = config.columns
        self.table = _table(config.table, _columns(cols, {config.key: String()}))
        t = self.table
        pm = PropertyMap(table=t, key=t.c[config.key], prefix="pattern")
        pm.add(Property("id", t.c[config.key], nullable=False))
        for prop, column in cols.items():
            flat = [prop.split("/")[-1].lower()] if prop.startswith("name/") else []
            pm.add(Property(prop, t.c[column], TYPES.get(prop, "string")), *flat)  # type: ignore[arg-type]
        self.addresses: Table | None = None
        if config.addresses is not None:
            ac = config.addresses
            extra: dict[str, Any] = {ac.key: String()}
            if ac.order_by:
                extra[ac.order_by] = Integer()
            self.addresses = _table(ac.table, _columns(ac.columns, extra))
            a = self.addresses
            coll = Collection("addresses", a, a.c[ac.key], t.c[config.key])
            for member, column in ac.columns.items():
                prop = Property(f"addresses/{member}", a.c[column], collection="addresses")
                coll.members[member.lower()] = prop
                pm.add(prop, *([] if member == "type" else [member.lower()]))
            pm.collections["addresses"] = coll
        self.properties = pm
        self.selected = [(prop, t.c[column]) for prop, column in cols.items()]

    def searcher(self, limits: Limits = DEFAULT_LIMITS) -> IdentitySearch:
        columns = [self.properties.key.label("k")] + [
            col.label(f"c{i}") for i, (_, col) in enumerate(self.selected)]
        return IdentitySearch(self.engine, self.properties, columns, self.render, limits)

    async def render(self, conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> list[bytes]:
        by_key: dict[Any, list[dict[str, Any]]] = {row[0]: [] for row in rows}
        if self.addresses is not None and rows:
            await self._load_addresses(conn, by_key)
        return [orjson.dumps(self._document(row, by_key[row[0]])) for row in rows]

    async def _load_addresses(self, conn: AsyncConnection, by_key: dict[Any, list]) -> None:
        ac = self.config.addresses
        assert ac is not None and self.addresses is not None
        a = self.addresses
        members = list(ac.columns.items())
        key = a.c[ac.key]
        stmt = select(key, *[a.c[col] for _, col in members]).where(key.in_(list(by_key)))
        stmt = stmt.order_by(a.c[ac.key], a.c[ac.order_by]) if ac.order_by else stmt
        for row in (await conn.execute(stmt)).all():
            found = dict(zip((m for m, _ in members), row[1:], strict=True))
            by_key[row[0]].append({k: _iso(found.get(k)) for k in _ADDRESS_KEYS})

    def _document(self, row: Sequence[Any], addresses: list[dict[str, Any]]) -> dict[str, Any]:
        values = {prop: _iso(row[i + 1]) for i, (prop, _) in enumerate(self.selected)}
        jt = values.get("juridicalType") or 0
        name = {k: values.get(f"name/{k}") for k in _NAME_KEYS}
        if not name["fullName"]:
            if jt == 2 and name["companyName"]:
                name["fullName"] = name["companyName"]
            else:
                parts = [name[k] for k in ("firstName", "middleName", "lastName") if name[k]]
                name["fullName"] = " ".join(parts) or name["companyName"] or ""
        return {
            "id": str(row[0]),
            "juridicalType": jt,
            "name": name,
            "addresses": addresses,
            "idnumber": values.get("idnumber"),
            "emails": [],
            "phoneNumbers": [],
            "birthDate": values.get("birthDate"),
            "partyReferenceCode": values.get("partyReferenceCode"),
        }
