"""Identity searches through the engine, on both backends: the page and, only when the page
cannot tell the total, the count, on one connection; later commits are seen; a PostgreSQL
connection the server ended does not fail the next search."""

import orjson
import pytest

from servicegate.identity.model import Identity
from servicegate.identity.search import total_from_page
from servicegate.identity.store import IdentityStore
from servicegate.storage.engine import create_engine
from servicegate.storage.migrate import upgrade
from tests.support.databases import end_pooled_connection, truncate_all

MATCH = "lastname eq 'Match'"
IDS = [f"m{i}" for i in range(1, 10)]  # the nine identities MATCH finds, in key order


def person(key: str, last: str) -> Identity:
    return Identity.model_validate({"id": key, "juridicalType": 1,
                                    "name": {"firstName": "Pat", "lastName": last}})


@pytest.fixture
async def store(engine):
    store = IdentityStore(engine)
    await store.upsert_many([person(k, "Match") for k in IDS]
                            + [person(f"o{i}", "Other") for i in range(20)])
    return store


@pytest.mark.parametrize(("found", "skip", "top", "total"), [
    (3, 0, 5, 3), (3, 10, 5, 13),      # a short page ends the results
    (0, 0, 5, 0),                      # nothing matches
    (5, 0, 5, None), (5, 7, 5, None),  # a full page: more may follow
    (0, 7, 5, None),                   # empty past the start: how far short?
    (0, 0, 0, None), (0, 3, 0, None),  # no page asked for
])
def test_total_from_page(found, skip, top, total):
    assert total_from_page(found, skip, top) == total


async def test_every_page_around_the_edges_has_the_true_total(store):
    search = store.searcher()
    for skip in (0, 1, 8, 9, 12):
        for top in (0, 1, 3, 9, 10):
            page = await search.search(MATCH, None, str(skip), str(top))
            ids = [orjson.loads(item)["id"] for item in page.items]
            assert (page.total, ids) == (9, IDS[skip:skip + top]), (skip, top)


async def test_a_search_sees_what_was_committed_after_the_last_one(store):
    search = store.searcher()
    assert (await search.search(MATCH, None, None, "0")).total == 9
    await store.put(person("m99", "Match"))
    assert (await search.search(MATCH, None, None, "0")).total == 10
    assert await store.delete("m1")
    page = await search.search(MATCH)
    assert page.total == 9 and "m1" not in [orjson.loads(i)["id"] for i in page.items]


@pytest.mark.postgres
async def test_a_connection_the_server_ended_does_not_fail_the_next_search(postgres_url):
    """The database ends the pooled connection (a restart, an idle timeout, an operator):
    the pool's pre-ping notices at checkout and the search runs on a new connection."""
    engine = create_engine(postgres_url, pool_size=1)
    try:
        await upgrade(engine)
        await truncate_all(engine)
        store = IdentityStore(engine)
        await store.upsert_many([person(k, "Match") for k in IDS])
        search = store.searcher()
        assert (await search.search(MATCH)).total == 9
        pid = await end_pooled_connection(engine)
        assert (await search.search(MATCH)).total == 9
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        await engine.dispose()
