"""Suspension and webhook delivery against the real broker: notifications are produced with the
worker's codec straight onto a subscriber's topic, keyed by citizen key, as the worker does."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from dfdg.subscriber import Subscriber
from dfdg.webhook_runner import WebhookRunner, group_for
from processors.routing import topic_for_subscriber
from processors.subscribers import Registry
from schemas.codec import Codec
from schemas.records import Notification
from sinks import registry_store
from sinks.webhook_retry import RetryPolicy
from streams.topics import ensure_topics, notify_topic_specs
from tests.webhook_receiver import SECRET, Receiver

pytestmark = pytest.mark.kafka

FAST = RetryPolicy(base_delay=0.2, jitter=0.0, max_attempts=10)
CITIZENS = ("A", "B", "C", "D")
PARTITIONS = 3


def note(sub_id: str, unique: str, citizen: str, seq: int) -> Notification:
    return Notification(
        notification_id=f"{unique}-{citizen}{seq}", recipient=sub_id, citizen_key=f"key-{unique}-{citizen}",
        kind="absence-registered", cause_event_id=f"ev-{unique}-{citizen}{seq}", cause_type="AbsenceRegistered",
        created_at=datetime.now(UTC), details={"seq": str(seq)})


async def produce(bootstrap: str, notes: list[Notification]) -> None:
    codec = Codec.default()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for n in notes:
            await producer.send_and_wait(topic_for_subscriber(n.recipient), codec.encode(n),
                                         key=n.citizen_key.encode(), headers=list(codec.headers_for(n)))
    finally:
        await producer.stop()


async def make_topic(bootstrap: str, sub_id: str) -> None:
    await ensure_topics(bootstrap, notify_topic_specs(sub_id, PARTITIONS))


async def committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
    finally:
        await admin.close()


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        return {tp: off for tp, off in (await consumer.end_offsets(tps)).items() if off > 0}
    finally:
        await consumer.stop()


async def eventually(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def per_citizen(ids: list[str], unique: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for nid in ids:
        tail = nid.removeprefix(f"{unique}-")
        out.setdefault(tail[0], []).append(int(tail[1:]))
    return out


async def drain(sub: Subscriber, want: int, rounds: int = 30) -> list[Notification]:
    got: list[Notification] = []
    for _ in range(rounds):
        async for n in sub.notifications(idle_timeout_s=1.0):
            got.append(n)
        if len(got) >= want:
            break
    return got


# ---- a. the Subscriber helper honours a suspension ----------------------------------------


async def test_suspended_subscriber_reads_and_commits_nothing_then_gets_every_missed_notification_once(
        bootstrap: str, unique: str, tmp_path: Path) -> None:
    sub_id = f"statistics:t-{unique}"
    reg = tmp_path / "subscribers.json"
    registry_store.save(Registry().add(sub_id).suspend(sub_id), reg)
    await make_topic(bootstrap, sub_id)
    group = f"statistics.t-{unique}.app"
    notes = [note(sub_id, unique, c, i) for i in range(1, 6) for c in CITIZENS]
    await produce(bootstrap, notes)

    async with Subscriber(sub_id, bootstrap, group_id=group, registry_path=reg, registry_check_s=0.1) as sub:
        while_suspended = await drain(sub, 1, rounds=4)
        await sub.commit()
        assert while_suspended == []
        assert await committed(bootstrap, group) == {}

        registry_store.update(lambda r: r.resume(sub_id), reg)
        first = []
        async for n in sub.notifications(idle_timeout_s=2.0):
            first.append(n)
            if len(first) == 8:
                await sub.commit()  # handled 8; the rest is handled but never committed
        assert len(first) == len(notes)
    ids = [n.notification_id for n in first]
    assert Counter(ids) == Counter(n.notification_id for n in notes)  # every missed one, none twice
    assert all(seq == sorted(seq) for seq in per_citizen(ids, unique).values())  # per-citizen order

    # Restart without having committed the last 12: exactly those come again, in order.
    async with Subscriber(sub_id, bootstrap, group_id=group, registry_path=reg, registry_check_s=0.1) as again:
        second = await drain(again, len(notes) - 8)
        await again.commit()
    assert sorted(n.notification_id for n in second) == sorted(ids[8:])
    assert all(seq == sorted(seq) for seq in per_citizen([n.notification_id for n in second], unique).values())
    assert await committed(bootstrap, group) == await end_offsets(bootstrap, topic_for_subscriber(sub_id))


async def test_suspension_mid_stream_stops_reading_and_a_repeated_notification_is_dropped(
        bootstrap: str, unique: str, tmp_path: Path) -> None:
    sub_id = f"statistics:u-{unique}"
    reg = tmp_path / "subscribers.json"
    registry_store.save(Registry().add(sub_id), reg)
    await make_topic(bootstrap, sub_id)
    group = f"statistics.u-{unique}.app"
    early = [note(sub_id, unique, "A", 1), note(sub_id, unique, "B", 1)]
    await produce(bootstrap, [*early, early[0]])  # the worker re-sent A1 (same notification id)

    async with Subscriber(sub_id, bootstrap, group_id=group, registry_path=reg, registry_check_s=0.1) as sub:
        got = await drain(sub, 2, rounds=5)
        assert sorted(n.notification_id for n in got) == sorted(n.notification_id for n in early)
        await sub.commit()
        before = await committed(bootstrap, group)

        registry_store.update(lambda r: r.suspend(sub_id), reg)
        await asyncio.sleep(0.2)
        late = [note(sub_id, unique, c, 2) for c in CITIZENS]
        await produce(bootstrap, late)
        assert await drain(sub, 1, rounds=3) == []
        await sub.commit()
        assert await committed(bootstrap, group) == before

        registry_store.update(lambda r: r.resume(sub_id), reg)
        after = await drain(sub, len(late))
        await sub.commit()
    assert sorted(n.notification_id for n in after) == sorted(n.notification_id for n in late)


# ---- b. the webhook runner against Kafka and a real HTTP endpoint ---------------------------




def webhook_registry(tmp_path: Path, sub_id: str, url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DFDG_TEST_WEBHOOK_SECRET", SECRET)
    reg = tmp_path / "subscribers.json"
    registry_store.save(Registry().add(sub_id, url, "env:DFDG_TEST_WEBHOOK_SECRET"), reg)
    return reg


def runner_for(bootstrap: str, reg: Path, tmp_path: Path, **kw: object) -> WebhookRunner:
    return WebhookRunner(bootstrap, registry_path=reg, held_dir=tmp_path / "held", policy=FAST,  # type: ignore[arg-type]
                         poll_interval=0.2, grace=5.0, **kw)


async def test_webhook_runner_delivers_each_notification_once_signed_and_commits_only_after_delivery(
        bootstrap: str, unique: str, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    sub_id = f"statistics:w-{unique}"
    reg = webhook_registry(tmp_path, sub_id, receiver.url, monkeypatch)
    await make_topic(bootstrap, sub_id)
    notes = [note(sub_id, unique, c, i) for i in range(1, 4) for c in CITIZENS]
    receiver.script = {
        f"{unique}-A1": [(500, {}), (503, {}), (502, {})],  # A is stuck for ~1.4 s
        f"{unique}-B2": [(429, {"Retry-After": "1"})],
    }
    await produce(bootstrap, notes)
    runner = runner_for(bootstrap, reg, tmp_path)
    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: len(receiver.accepted) >= len(notes))
        topic = topic_for_subscriber(sub_id)
        ends = await end_offsets(bootstrap, topic)
        deadline = time.monotonic() + 30
        while await committed(bootstrap, group_for(sub_id)) != ends:
            assert time.monotonic() < deadline, "offsets not committed after delivery"
            await asyncio.sleep(0.2)
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)

    assert receiver.bad_signatures == []
    assert Counter(receiver.accepted) == Counter(n.notification_id for n in notes)  # once each
    order = receiver.accepted
    assert all(seq == sorted(seq) for seq in per_citizen(order, unique).values())  # per-citizen FIFO
    a1 = order.index(f"{unique}-A1")
    assert all(order.index(f"{unique}-{c}{i}") < a1 for c in "CD" for i in (1, 2, 3))  # A holds only A
    assert receiver.attempts[f"{unique}-A1"] == 4 and receiver.attempts[f"{unique}-B2"] == 2

    # Everything was committed: a second pass re-sends nothing.
    await asyncio.wait_for(runner_for(bootstrap, reg, tmp_path, once=True).run(), 60)
    assert len(receiver.accepted) == len(notes)


async def test_webhook_runner_pauses_a_suspended_subscriber_and_delivers_what_it_missed_on_resume(
        bootstrap: str, unique: str, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    sub_id = f"statistics:v-{unique}"
    reg = webhook_registry(tmp_path, sub_id, receiver.url, monkeypatch)
    await make_topic(bootstrap, sub_id)
    group = group_for(sub_id)
    first = [note(sub_id, unique, c, 1) for c in CITIZENS]
    await produce(bootstrap, first)
    runner = runner_for(bootstrap, reg, tmp_path)
    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: len(receiver.accepted) == len(first))
        await eventually(lambda: sub_id in runner.feed_ids())
        registry_store.update(lambda r: r.suspend(sub_id), reg)
        await asyncio.sleep(1.0)  # a few registry polls
        before = await committed(bootstrap, group)
        missed = [note(sub_id, unique, c, i) for i in (2, 3) for c in CITIZENS]
        await produce(bootstrap, missed)
        await asyncio.sleep(2.0)
        assert len(receiver.accepted) == len(first)  # no deliveries while suspended
        assert await committed(bootstrap, group) == before  # and no commits

        registry_store.update(lambda r: r.resume(sub_id), reg)
        await eventually(lambda: len(receiver.accepted) == len(first) + len(missed))
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)
    assert Counter(receiver.accepted) == Counter(n.notification_id for n in first + missed)
    assert all(seq == sorted(seq) for seq in per_citizen(receiver.accepted, unique).values())
    assert receiver.bad_signatures == []


async def test_webhook_410_disables_the_subscriber_holds_the_rest_and_the_feed_stops(
        bootstrap: str, unique: str, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    sub_id = f"statistics:g-{unique}"
    reg = webhook_registry(tmp_path, sub_id, receiver.url, monkeypatch)
    await make_topic(bootstrap, sub_id)
    notes = [note(sub_id, unique, "A", i) for i in (1, 2, 3)]
    receiver.script = {f"{unique}-A1": [(410, {})]}
    await produce(bootstrap, notes)
    runner = runner_for(bootstrap, reg, tmp_path)
    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: registry_store.load(reg)[sub_id].state == "disabled")
        await eventually(lambda: sub_id not in runner.feed_ids())
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)
    assert receiver.accepted == []
    from sinks.webhook_store import FailedDeliveryStore

    held = FailedDeliveryStore(tmp_path / "held", sub_id).entries()
    assert [e.notification_id for e in held] == [n.notification_id for n in notes]  # held in order
    assert await committed(bootstrap, group_for(sub_id)) == await end_offsets(bootstrap, topic_for_subscriber(sub_id))
