"""The citizen step's loop (``streams.citizen_loop``) against a real broker: it reads exactly the
partitions it is given, hands each partition's part to the step, commits only after every part
is done, finishes the batch in hand before a revoke returns, and a new loop of the same group
goes on from the commit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from aiokafka import TopicPartition

from streams.citizen_loop import CitizenLoop, citizen_group
from streams.consumed import ConsumedMessage
from tests.streams.test_ingress_loop_kafka import _cancel, _commit, _committed, _publish, _topic, _until

pytestmark = pytest.mark.kafka


async def test_reads_only_its_partitions_commits_after_the_step_and_revoke_waits_for_the_batch(
        bootstrap: str, unique: str) -> None:
    events, receipts, app = f"cl-events-{unique}", f"cl-receipts-{unique}", f"clapp-{unique}"
    await _topic(bootstrap, events, partitions=3)
    await _topic(bootstrap, receipts, partitions=3)
    for p in range(3):
        await _publish(bootstrap, events, [b"e%d-%d" % (p, i) for i in range(4)], partition=p)
    await _publish(bootstrap, receipts, [b"r1"], partition=1)
    seen: list[tuple[int, str, bytes]] = []
    release = asyncio.Event()
    release.set()

    async def step(partition: int, messages: Sequence[ConsumedMessage]) -> None:
        assert all(m.partition == partition for m in messages)
        await release.wait()
        seen.extend((partition, m.topic, m.value or b"") for m in messages)

    loop = CitizenLoop(bootstrap, app, (events, receipts), step, lambda p: {}, {})
    task = asyncio.create_task(loop.run())
    try:
        await loop.assign({0, 1})  # before the loop runs: taken up when it starts
        await _until(lambda: len(seen) == 9)
        assert {p for p, _, _ in seen} == {0, 1}, "partition 2 is not this worker's"
        assert [v for p, t, v in seen if p == 0] == [b"e0-%d" % i for i in range(4)]
        assert (1, receipts, b"r1") in seen
        await _until(lambda: loop.owned == frozenset({0, 1}))
        committed = await _committed(bootstrap, citizen_group(app))
        for _ in range(50):
            if committed.get(TopicPartition(events, 1)) == 4:
                break
            await asyncio.sleep(0.1)
            committed = await _committed(bootstrap, citizen_group(app))
        assert committed[TopicPartition(events, 0)] == 4 and committed[TopicPartition(receipts, 1)] == 1
        assert TopicPartition(events, 2) not in committed

        # A batch in hand when the revoke comes: the revoke returns only once it is committed.
        release.clear()
        await _publish(bootstrap, events, [b"late"], partition=0)
        await asyncio.sleep(1.0)  # the loop has it in hand, waiting on the step
        revoking = asyncio.create_task(loop.revoke())
        await asyncio.sleep(0.5)
        assert not revoking.done(), "the revoke must wait for the batch in hand"
        release.set()
        await asyncio.wait_for(revoking, 10)
        assert loop.owned == frozenset()
        assert (await _committed(bootstrap, citizen_group(app)))[TopicPartition(events, 0)] == 5
        await _publish(bootstrap, events, [b"after-revoke"], partition=0)
        await asyncio.sleep(1.0)
        assert (0, events, b"after-revoke") not in seen
    finally:
        await _cancel(task)

    # Another worker's loop of the same group goes on from the commit: nothing twice, nothing skipped.
    seen.clear()
    other = CitizenLoop(bootstrap, app, (events, receipts), step, lambda p: {}, {})
    task = asyncio.create_task(other.run())
    try:
        await other.assign({0, 2})
        await _until(lambda: len(seen) == 5)
        assert sorted(v for _, _, v in seen) == sorted([b"after-revoke"] + [b"e2-%d" % i for i in range(4)])
    finally:
        await _cancel(task)


async def test_reads_on_from_the_positions_kept_with_the_rows_not_the_groups_commit(
        bootstrap: str, unique: str) -> None:
    """The group's commit can be ahead of the restored rows (another worker committed after this
    one restored the table): the loop reads on from where the rows say, here offset 1 of 5."""
    events, receipts, app = f"cl2-events-{unique}", f"cl2-receipts-{unique}", f"cl2app-{unique}"
    await _topic(bootstrap, events)
    await _topic(bootstrap, receipts)
    await _publish(bootstrap, events, [b"e%d" % i for i in range(5)])
    await _commit(bootstrap, citizen_group(app), {TopicPartition(events, 0): 4})
    seen: list[bytes] = []

    async def step(partition: int, messages: Sequence[ConsumedMessage]) -> None:
        seen.extend(m.value or b"" for m in messages)

    loop = CitizenLoop(bootstrap, app, (events, receipts), step, lambda p: {events: 1}, {})
    task = asyncio.create_task(loop.run())
    try:
        await loop.assign({0})
        await _until(lambda: len(seen) == 4)
        await asyncio.sleep(0.5)
        assert seen == [b"e1", b"e2", b"e3", b"e4"]
    finally:
        await _cancel(task)
