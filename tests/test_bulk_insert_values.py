"""`BulkInsert` on PostgreSQL sends each column as one JSON array the server splits (a JSON
column: its documents joined by a separator), and each value shared by the batch as one
parameter: any value of the column types the hot paths use comes back as it went, NULL stays
NULL, and a string too long for its column, or a JSON column's value that is no document, is
refused, never cut short or split."""

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from asyncpg.exceptions import StringDataRightTruncationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, Boolean, Column, DateTime, Float, Integer, MetaData, String, Table, Text, select

from servicegate.storage.bulk_insert import BulkInsert
from servicegate.storage.engine import create_engine

pytestmark = pytest.mark.postgres

meta = MetaData()
values = Table("test_bulk_values", meta, Column("n", Integer, primary_key=True),
               Column("name", String(30)), Column("body", Text), Column("count", Integer),
               Column("ratio", Float), Column("flag", Boolean),
               Column("at", DateTime(timezone=True)), Column("doc", JSON))
COLUMNS = ("n", "name", "body", "count", "ratio", "flag", "at", "doc")

# PostgreSQL text holds no NUL character; surrogates are not Unicode scalar values
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
json_docs = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats(allow_nan=False,
                                                                        allow_infinity=False)
    | texts, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner,
                                                                        max_size=4),
    max_leaves=10)
cells = st.tuples(
    st.none() | texts.filter(lambda s: len(s) <= 30), st.none() | texts,
    st.none() | st.integers(-2**31, 2**31 - 1),
    st.none() | st.floats(allow_nan=False, allow_infinity=False),
    st.none() | st.booleans(),
    st.none() | st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                             timezones=st.just(UTC)),
    st.none() | json_docs.map(lambda d: orjson.dumps(d).decode()))


async def _round_trip(url: str, rows: list[tuple], shared: tuple = ()) -> list[tuple]:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(meta.drop_all)
            await conn.run_sync(meta.create_all)
        insert = BulkInsert(engine.dialect, values, COLUMNS[:len(COLUMNS) - len(shared)],
                            COLUMNS[len(COLUMNS) - len(shared):])
        async with engine.connect() as conn:
            await insert.execute_committed(conn, rows, shared)
        async with engine.connect() as conn:
            raw = (await conn.execute(select(values).order_by(values.c.n))).all()
            # the JSON column's text as stored (the type would parse it)
            docs = (await conn.exec_driver_sql(
                "SELECT doc::text FROM test_bulk_values ORDER BY n")).scalars().all()
        return [(*r[:7], d) for r, d in zip(raw, docs, strict=True)]
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(meta.drop_all)
        await engine.dispose()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(cells, min_size=1, max_size=8))
def test_every_value_comes_back_as_it_went(postgres_url, drawn):
    rows = [(n, *cell) for n, cell in enumerate(drawn)]
    assert asyncio.run(_round_trip(postgres_url, rows)) == rows


def test_json_null_and_sql_null_stay_apart_and_naive_times_are_utc(postgres_url):
    naive = datetime(2026, 11, 28, 12, 0, 0, 123456)
    rows = [(0, "a", None, None, None, None, naive, "null"),
            (1, "b", "", 0, 0.0, False, None, None)]
    back = asyncio.run(_round_trip(postgres_url, rows))
    assert back[0][6] == naive.replace(tzinfo=UTC) and back[0][7] == "null"
    assert back[1] == (1, "b", "", 0, 0.0, False, None, None)
    assert back[1][6] is None and back[1][7] is None


def test_values_shared_by_the_batch_come_back_in_every_row(postgres_url):
    at = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    shared = ("shared name", None, 7, 0.5, True, at, orjson.dumps({"a": [1, "\""]}).decode())
    back = asyncio.run(_round_trip(postgres_url, [(0,), (1,)], shared))
    assert back == [(0, *shared), (1, *shared)]


def test_a_string_too_long_for_its_column_is_refused_not_cut(postgres_url):
    rows = [(0, "fits", None, None, None, None, None, None),
            (1, "x" * 31, None, None, None, None, datetime.now(UTC) - timedelta(1), None)]
    with pytest.raises(StringDataRightTruncationError):
        asyncio.run(_round_trip(postgres_url, rows))
    with pytest.raises(StringDataRightTruncationError):  # a shared one too
        asyncio.run(_round_trip(postgres_url, [(0,)], ("x" * 31, *[None] * 6)))


def test_a_lone_null_document_is_one_row(postgres_url):
    rows = [(0, None, None, None, None, None, None, None)]
    assert asyncio.run(_round_trip(postgres_url, rows)) == rows


@pytest.mark.parametrize("bad", ["", "1\x1e2", "\x1f", '"a\x1fb"'])
def test_a_json_value_that_would_split_is_refused_before_sending(bad):
    """A separator inside a value would store other rows than were given: refused at once."""
    from sqlalchemy.dialects.postgresql.asyncpg import dialect

    insert = BulkInsert(dialect(), values, COLUMNS)
    with pytest.raises(ValueError):
        insert.parameters([(0, None, None, None, None, None, None, "{}"),
                           (1, None, None, None, None, None, None, bad)])
    with pytest.raises(ValueError):
        insert.parameters([(1, None, None, None, None, None, None, bad)])
