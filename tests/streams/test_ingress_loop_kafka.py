"""The door's own consumer (``streams.ingress_loop``) against a real broker: a batch is committed
only once its handler has returned, a failed batch is read again, and a new door group starts
where the app's group left the ingress topics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.consumed import ConsumedMessage
from streams.group_offsets import inherit_offsets
from streams.ingress_loop import IngressLoop, door_group
from tests.streams.test_lag_kafka import _commit

pytestmark = pytest.mark.kafka


async def _topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def _publish(bootstrap: str, topic: str, values: Sequence[bytes], partition: int = 0) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send(topic, value, key=b"k", partition=partition, headers=[("h", b"1")],
                                timestamp_ms=1_700_000_000_123)
        await producer.flush()
    finally:
        await producer.stop()


async def _committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(group)).items()}
    finally:
        await admin.close()


async def _until(condition: object, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def _cancel(task: asyncio.Task[None]) -> None:
    """Stop a loop's task and wait for it, whatever it ends with."""
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


async def test_a_batch_is_committed_after_its_handler_returns_and_a_failed_one_is_read_again(
        bootstrap: str, unique: str) -> None:
    topic, app = f"door-loop-{unique}", f"doorapp-{unique}"
    await _topic(bootstrap, topic)
    await _publish(bootstrap, topic, [b"a%d" % i for i in range(10)])
    seen: list[ConsumedMessage] = []
    fail = asyncio.Event()

    async def handle(messages: Sequence[ConsumedMessage]) -> None:
        if fail.is_set():
            raise RuntimeError("the broker refused an output")
        seen.extend(messages)

    loop = IngressLoop(bootstrap, app, f"inst-{unique}", [topic], handle, {})
    task = asyncio.create_task(loop.run())
    try:
        await _until(lambda: len(seen) == 10)
        committed = await _committed(bootstrap, door_group(app))
        for _ in range(50):
            if committed.get(TopicPartition(topic, 0)) == 10:
                break
            await asyncio.sleep(0.1)
            committed = await _committed(bootstrap, door_group(app))
        assert committed[TopicPartition(topic, 0)] == 10
        first = seen[0]
        assert (first.topic, first.partition, first.offset, first.key, first.value) == (topic, 0, 0, b"k", b"a0")
        assert round(first.timestamp * 1000) == 1_700_000_000_123 and list(first.headers) == [("h", b"1")]
        fail.set()
        await _publish(bootstrap, topic, [b"b%d" % i for i in range(5)])
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(task, 30)
    finally:
        await _cancel(task)
    # Nothing of the failed batch was committed: a new loop (a restarted worker) reads it again.
    assert (await _committed(bootstrap, door_group(app)))[TopicPartition(topic, 0)] == 10
    fail.clear()
    seen.clear()
    task = asyncio.create_task(IngressLoop(bootstrap, app, f"inst-{unique}", [topic], handle, {}).run())
    try:
        await _until(lambda: len(seen) == 5)
        assert [m.value for m in seen] == [b"b%d" % i for i in range(5)]
    finally:
        await _cancel(task)


def _slow_commits(monkeypatch: pytest.MonkeyPatch, delay_s: float, events: list[str]) -> None:
    """Each commit goes to the real broker ``delay_s`` late, as over a slow network, so that what
    happens while it is on its way can be seen; never two on their way at once."""
    real_commit = AIOKafkaConsumer.commit
    in_flight: list[int] = []

    async def slow_commit(self: AIOKafkaConsumer, offsets: object = None) -> None:
        in_flight.append(1)
        assert len(in_flight) == 1, "two commits on their way at once"
        events.append("commit sent")
        try:
            await asyncio.sleep(delay_s)
            await real_commit(self, offsets)
            events.append("commit landed")
        finally:
            in_flight.pop()

    monkeypatch.setattr(AIOKafkaConsumer, "commit", slow_commit)


async def test_r2_1_a_batch_s_commit_lands_while_the_next_is_handled_and_a_stop_waits_for_it(
        bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commit of one batch is on its way while the next is handled (never two at once, in
    order); a stop asked for at the end of a batch returns only once that batch's commit has
    landed, so a restarted worker does not replay it."""
    events: list[str] = []
    _slow_commits(monkeypatch, 2.0, events)
    topic, app = f"door-pipe-{unique}", f"doorpipe-{unique}"
    await _topic(bootstrap, topic)
    await _publish(bootstrap, topic, [b"a%d" % i for i in range(6)])
    stopping: list[asyncio.Future[None]] = []
    loop: IngressLoop

    async def handle(messages: Sequence[ConsumedMessage]) -> None:
        events.append(f"handled {len(messages)}")
        if len(messages) == 6:  # the next batch, there to be read while this one's commit is on its way
            await _publish(bootstrap, topic, [b"b%d" % i for i in range(3)])
        elif not stopping:
            stopping.append(asyncio.ensure_future(loop.stop()))

    loop = IngressLoop(bootstrap, app, f"inst-{unique}", [topic], handle, {})
    task = asyncio.create_task(loop.run())
    try:
        await _until(lambda: bool(stopping))
        await asyncio.wait_for(stopping[0], 30)
        # No polling: the stop has returned, so the last batch's commit is in.
        assert (await _committed(bootstrap, door_group(app)))[TopicPartition(topic, 0)] == 9
        await asyncio.wait_for(task, 30)
    finally:
        await _cancel(task)
    # The second batch was handled before the first's commit landed; the commits went one at a time.
    assert events.index("handled 3") < events.index("commit landed"), events
    assert [e for e in events if e.startswith("commit")] == ["commit sent", "commit landed"] * 2, events


async def test_r2_1_a_rebalance_hands_partitions_over_once_the_last_batch_s_commit_has_landed(
        bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second door joins while the first's last commit is on its way: the first hands its
    partitions over only once that commit has landed, so the second starts after the messages
    the first handled, and no message is handled twice."""
    events: list[str] = []
    _slow_commits(monkeypatch, 3.0, events)
    topic, app = f"door-handover-{unique}", f"doorhand-{unique}"
    await _topic(bootstrap, topic, partitions=2)
    for partition in range(2):
        await _publish(bootstrap, topic, [b"%d-%d" % (partition, i) for i in range(5)], partition=partition)
    seen: list[bytes] = []
    assignments: list[tuple[str, bool]] = []

    async def handle(messages: Sequence[ConsumedMessage]) -> None:
        seen.extend(m.value or b"" for m in messages)

    def told(name: str) -> Callable[[bool], None]:
        return lambda assigned: assignments.append((name, assigned))

    first = asyncio.create_task(IngressLoop(bootstrap, app, f"inst-a-{unique}", [topic], handle, {},
                                            told("first")).run())
    second: asyncio.Task[None] | None = None
    try:
        await _until(lambda: len(seen) == 10 and "commit sent" in events)
        second = asyncio.create_task(IngressLoop(bootstrap, app, f"inst-b-{unique}", [topic], handle, {},
                                                 told("second")).run())
        await _until(lambda: ("second", True) in assignments, timeout_s=60)
        await asyncio.sleep(3.0)  # the second door's first fetches, a replay among them if any
        assert events[:2] == ["commit sent", "commit landed"]
        assert sorted(seen) == sorted(b"%d-%d" % (p, i) for p in range(2) for i in range(5)), "handled twice"
    finally:
        if second is not None:
            await _cancel(second)
        await _cancel(first)


async def test_a_new_door_group_starts_at_the_app_groups_offsets_and_a_used_one_is_left_alone(
        bootstrap: str, unique: str) -> None:
    topic, other, app = f"door-inherit-{unique}", f"door-other-{unique}", f"doorinh-{unique}"
    await _topic(bootstrap, topic, partitions=2)
    await _topic(bootstrap, other)
    for p in range(2):
        await _publish(bootstrap, topic, [b"x"] * 8, partition=p)
    await _publish(bootstrap, other, [b"x"] * 8)
    await _commit(bootstrap, app, {TopicPartition(topic, 0): 3, TopicPartition(topic, 1): 6,
                                   TopicPartition(other, 0): 2})
    assert await inherit_offsets(bootstrap, door_group(app), app, [topic], {}) == 2
    # Only the ingress topics are taken over.
    assert await _committed(bootstrap, door_group(app)) == {TopicPartition(topic, 0): 3, TopicPartition(topic, 1): 6}
    await _commit(bootstrap, app, {TopicPartition(topic, 0): 7})
    assert await inherit_offsets(bootstrap, door_group(app), app, [topic], {}) == 0
    assert (await _committed(bootstrap, door_group(app)))[TopicPartition(topic, 0)] == 3


async def test_the_door_is_ready_while_its_group_gives_it_partitions_and_not_during_a_handover(
        bootstrap: str, unique: str) -> None:
    """``DFDG_ROLE=door``'s /ready follows its own group, not its start: ready once the group has
    assigned it partitions, not ready while a second door joining takes them back to share."""
    from streams.bootstrap import _ready_with_the_group
    from streams.web import Readiness

    topic, app = f"door-ready-{unique}", f"doorready-{unique}"
    await _topic(bootstrap, topic, partitions=2)

    async def handle(messages: Sequence[ConsumedMessage]) -> None:
        return None

    readiness = Readiness()
    seen: list[bool] = []
    follow = _ready_with_the_group(readiness)

    def on_assignment(assigned: bool) -> None:
        seen.append(assigned)
        follow(assigned)

    first = asyncio.create_task(IngressLoop(bootstrap, app, f"inst-a-{unique}", [topic], handle, {},
                                            on_assignment).run())
    second: asyncio.Task[None] | None = None
    try:
        assert not readiness.ready  # nothing assigned yet
        await _until(lambda: readiness.ready)
        assert seen[-1] is True  # aiokafka also reports the empty revocation before a first join
        joined = len(seen)
        second = asyncio.create_task(IngressLoop(bootstrap, app, f"inst-b-{unique}", [topic], handle, {}).run())
        await _until(lambda: seen[joined:] == [False, True], timeout_s=60)  # a handover, then its share
        assert readiness.ready
    finally:
        if second is not None:
            await _cancel(second)
        await _cancel(first)
