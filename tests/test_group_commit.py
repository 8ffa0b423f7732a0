"""Group commit on its own (no database): every caller gets its own outcome, in order; a
failed write fails its own group only."""

import asyncio

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
