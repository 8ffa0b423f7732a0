"""Group commit: every caller gets its own outcome, in order; a failed write fails its own
group only, and a group that fails as a whole is stored again one item at a time."""

import asyncio

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.exc import IntegrityError

from servicegate.storage.group_commit import GroupCommit


async def test_callers_answered_by_a_group_can_submit_again_at_once():
    """A writer that has just found nothing left must not keep a slot the next caller needs:
    callers woken by the last group submit again before any done-callback could run."""
    groups: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        await asyncio.sleep(0)
        groups.append(items)
        return [i * 10 for i in items]

    group: GroupCommit[int, int] = GroupCommit(write, writers=1)

    async def caller(n: int) -> list[int]:
        return [await group.submit(n * 100 + i) for i in range(20)]

    answers = await asyncio.wait_for(asyncio.gather(*(caller(n) for n in range(16))), 5)
    assert answers == [[(n * 100 + i) * 10 for i in range(20)] for n in range(16)]
    assert sum(len(g) for g in groups) == 16 * 20
    assert max(len(g) for g in groups) > 1  # concurrent callers shared groups


async def test_a_failed_write_fails_its_group_only():
    async def write(items: list[int]) -> list[int | BaseException]:
        await asyncio.sleep(0)
        if 13 in items:
            raise RuntimeError("disk full")
        return [ValueError(i) if i < 0 else i for i in items]

    group: GroupCommit[int, int] = GroupCommit(write, writers=1, max_weight=1)
    results = await asyncio.gather(*(group.submit(i) for i in (1, 13, -2, 4)),
                                   return_exceptions=True)
    assert results[0] == 1 and results[3] == 4
    assert isinstance(results[1], RuntimeError) and isinstance(results[2], ValueError)


def test_one_group_commit_serves_event_loops_one_after_another():
    """It keeps the loop it runs on (no look-up per submission) but follows a new one: a
    runtime restarted, or tests each on a loop of their own."""
    async def write(items: list[int]) -> list[int]:
        await asyncio.sleep(0)
        return [-i for i in items]

    group: GroupCommit[int, int] = GroupCommit(write, writers=2)

    async def burst(base: int) -> list[int]:
        return await asyncio.gather(*(group.submit(base + i) for i in range(10)))

    for base in (0, 100, 200):  # a new event loop each time
        assert asyncio.run(burst(base)) == [-(base + i) for i in range(10)]


# -- on a real database: a group that fails as a whole is stored again one item at a time --

marks = Table("test_group_marks", MetaData(), Column("name", String(20), primary_key=True),
              Column("n", Integer, nullable=False))


@pytest.fixture
async def marks_table(engine):
    async with engine.begin() as conn:
        await conn.run_sync(marks.metadata.drop_all)
        await conn.run_sync(marks.metadata.create_all)
    yield engine
    async with engine.begin() as conn:
        await conn.run_sync(marks.metadata.drop_all)


async def stored_marks(engine) -> dict[str, int]:
    async with engine.connect() as conn:
        return dict((await conn.execute(select(marks.c.name, marks.c.n))).all())


class Marks:
    """A writer that stores each item (name, n) as a row; a name stored before is a unique
    key violation (IntegrityError) that fails the whole transaction."""

    def __init__(self, engine, *, race: dict[str, int] | None = None) -> None:
        self.engine = engine
        self.groups: list[list[str]] = []
        self.race = dict(race or {})  # names another writer stores after our look-up, once

    async def write(self, items: list[tuple[str, int]]) -> list[object]:
        self.groups.append([name for name, _ in items])
        async with self.engine.begin() as conn:
            names = [name for name, _ in items]
            known = dict((await conn.execute(select(marks.c.name, marks.c.n)
                                              .where(marks.c.name.in_(names)))).all())
            await self._race(names)
            new = [(name, n) for name, n in items if name not in known]
            if new:
                await conn.execute(insert(marks), [{"name": a, "n": b} for a, b in new])
        return [("replayed", known[name]) if name in known else ("stored", n)
                for name, n in items]

    async def _race(self, names: list[str]) -> None:
        """Another process commits a row with one of these names between our look-up and
        our insert (on SQLite the look-up holds no lock yet, as on PostgreSQL)."""
        for name in names:
            if name in self.race:
                n = self.race.pop(name)
                async with self.engine.begin() as other:
                    await other.execute(insert(marks), [{"name": name, "n": n}])


async def test_a_group_that_fails_is_stored_item_by_item_failing_only_its_own(marks_table):
    engine = marks_table
    async with engine.begin() as conn:
        await conn.execute(insert(marks), [{"name": "taken", "n": 0}])
    writer = Marks(engine)
    calls: list[list[str]] = []

    async def write(items):  # a value the database refuses (NULL) fails the whole group
        calls.append([name for name, _ in items])
        if any(n < 0 for _, n in items):
            async with engine.begin() as conn:
                await conn.execute(insert(marks), [{"name": "bad", "n": None}])
        return await writer.write(items)

    group = GroupCommit(write, writers=1)
    items = [("a", 1), ("b", 2), ("neg", -1), ("c", 3)]
    results = await asyncio.gather(*(group.submit(item) for item in items),
                                   return_exceptions=True)
    assert results[0] == ("stored", 1) and results[1] == ("stored", 2)
    assert isinstance(results[2], IntegrityError) and results[3] == ("stored", 3)
    # the group failed whole, then each item alone (an IntegrityError alone: once more)
    assert calls == [["a", "b", "neg", "c"], ["a"], ["b"], ["neg"], ["neg"], ["c"]]
    assert await stored_marks(engine) == {"taken": 0, "a": 1, "b": 2, "c": 3}


async def test_a_key_raced_in_from_elsewhere_is_tried_again_and_finds_it(marks_table):
    """The group hits the unique key another process inserted after its look-up: each item is
    stored alone, and the raced one, tried once more, finds the row that got there first."""
    engine = marks_table
    writer = Marks(engine, race={"x": 99})
    group = GroupCommit(writer.write, writers=1)
    results = await asyncio.gather(*(group.submit(item) for item in [("w", 1), ("x", 2),
                                                                      ("y", 3)]))
    assert results == [("stored", 1), ("replayed", 99), ("stored", 3)]
    assert writer.groups == [["w", "x", "y"], ["w"], ["x"], ["y"]]
    assert await stored_marks(engine) == {"w": 1, "x": 99, "y": 3}
