"""Bulk loads (`storage/bulk_load.py`): the engine's Core statements and the driver's bulk path
(PostgreSQL binary COPY, SQLite multi-row INSERTs) store identical rows, on both backends, for
plain inserts and upserts, and refuse the same writes."""

import asyncio
import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from servicegate.identity import generator
from servicegate.identity.model import Identity
from servicegate.identity.parsing import rows_of
from servicegate.identity.store import IdentityStore, Refused
from servicegate.storage.bulk_load import (
    EngineBulkLoad,
    PostgresCopy,
    SqliteMultiRow,
    driver_bulk_load,
)
from servicegate.storage.engine import create_engine

STAMP = dt.datetime(2026, 11, 28, 12, 30, 15, 123456, tzinfo=dt.UTC)


def loaders(engine):
    return {"engine": EngineBulkLoad(), "driver": driver_bulk_load(engine)}


async def empty(engine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM identity_addresses"))
        await conn.execute(text("DELETE FROM identities"))


async def stored(engine) -> tuple[list, list]:
    """Every stored row, as the database holds it (SQLite: the text of dates and times)."""
    async with engine.connect() as conn:
        people = (await conn.exec_driver_sql("SELECT * FROM identities ORDER BY id")).all()
        places = (await conn.exec_driver_sql(
            "SELECT * FROM identity_addresses ORDER BY identity_id, position")).all()
    return [tuple(r) for r in people], [tuple(r) for r in places]


async def write(store: IdentityStore, identities: list[Identity], *, new: bool) -> None:
    rows, addresses = [], []
    for identity in identities:
        row, its = rows_of(identity, STAMP)
        rows.append(row)
        addresses.extend(its)
    await store.write_rows(rows, addresses, bulk=True, new=new)


def generated(seed: int, n: int) -> list[Identity]:
    return [Identity.model_validate(generator.identity(seed, i)) for i in range(n)]


def test_the_driver_path_is_chosen_per_backend(engine):
    expected = PostgresCopy if engine.dialect.name == "postgresql" else SqliteMultiRow
    assert isinstance(driver_bulk_load(engine), expected)


async def test_both_paths_store_identical_rows(engine):
    """An initial load (plain inserts), then an upsert of changed and new identities (their
    addresses replaced): the same rows either way."""
    first = generated(5, 150)
    # the same ids with other values (fewer or more addresses), and new ids
    changed = [Identity.model_validate({**generator.identity(6, i), "id": first[i].id})
               for i in range(0, 150, 3)] + generated(7, 20)
    results = {}
    for name, loader in loaders(engine).items():
        await empty(engine)
        store = IdentityStore(engine, loader)
        await write(store, first, new=True)
        await write(store, changed, new=False)
        results[name] = await stored(engine)
    people, places = results["engine"]
    assert len(people) == 150 + 20 and len(places) > 170
    assert results["driver"] == results["engine"]


async def test_both_paths_refuse_an_existing_id_in_a_plain_insert(engine):
    batch = generated(8, 5)
    for loader in loaders(engine).values():
        await empty(engine)
        store = IdentityStore(engine, loader)
        await write(store, batch[:2], new=True)
        with pytest.raises(Refused):
            await write(store, batch[1:], new=True)  # batch[1] is there: none of it is stored
        assert [r[0] for r in (await stored(engine))[0]] == sorted(i.id for i in batch[:2])


texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                max_size=12)
people = st.builds(
    lambda n, first, last, company, born, cities: {
        "id": f"h-{n}", "juridicalType": 2 if company else 1,
        "name": {"firstName": first, "lastName": last, "companyName": company},
        "birthDate": born and born.isoformat(),
        "addresses": [{"city": c, "zipCode": c and c[:5]} for c in cities]},
    st.integers(0, 10**6), st.none() | texts, st.none() | texts, st.none() | texts,
    st.none() | st.dates(dt.date(1000, 1, 1), dt.date(9999, 12, 31)),
    st.lists(st.none() | texts, max_size=3))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(people, min_size=1, max_size=8, unique_by=lambda p: p["id"]))
def test_any_identity_is_stored_alike_by_both_paths(migrated_url, drawn):
    identities = [Identity.model_validate(p) for p in drawn]

    async def both() -> dict:
        engine = create_engine(migrated_url)
        try:
            results = {}
            for name, loader in loaders(engine).items():
                await empty(engine)
                await write(IdentityStore(engine, loader), identities, new=False)
                results[name] = await stored(engine)
            return results
        finally:
            await empty(engine)
            await engine.dispose()

    results = asyncio.run(both())
    assert results["driver"] == results["engine"]
