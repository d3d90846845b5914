"""``collect_lag`` against a real broker: agreement with Kafka's own ConsumerGroupCommand, and
Burrow statuses for a stopped, a stalled and a caught-up consumer."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from dfdg.cmd_lag import register
from dfdg.localbroker.manager import java_command, resolve_classpath
from streams.lag import AGE_FETCH_BYTES, LagReport, LagTracker, collect_lag
from streams.lag_eval import Status

pytestmark = pytest.mark.kafka

PARTITIONS = 3
PER_PARTITION = 20
AGE_S = 120.0


async def _create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()


async def _topic_with_messages(bootstrap: str, topic: str) -> None:
    await _create_topic(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        # Timestamps in the past so the age of the oldest unconsumed message is known.
        old_ms = int((time.time() - AGE_S) * 1000)
        for p in range(PARTITIONS):
            for i in range(PER_PARTITION):
                await producer.send(topic, b"x", partition=p, timestamp_ms=old_ms + i)
        await producer.flush()
    finally:
        await producer.stop()


async def _commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


def _kafka_describe(bootstrap: str, group: str) -> dict[tuple[str, int], tuple[int, int, int]]:
    cmd = java_command(resolve_classpath(), "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                       "--bootstrap-server", bootstrap, "--describe", "--group", group)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    rows: dict[tuple[str, int], tuple[int, int, int]] = {}
    for line in out.splitlines():
        cols = line.split()
        if len(cols) >= 6 and cols[0] == group:
            rows[(cols[1], int(cols[2]))] = (int(cols[3]), int(cols[4]), int(cols[5]))
    return rows


async def test_collect_lag_agrees_with_kafka_consumer_group_command(bootstrap: str, unique: str) -> None:
    topic, group = f"lag-agree-{unique}", f"dfdg-lagtest-{unique}"
    await _topic_with_messages(bootstrap, topic)
    committed = {TopicPartition(topic, 0): 5, TopicPartition(topic, 1): 20, TopicPartition(topic, 2): 0}
    await _commit(bootstrap, group, committed)

    snapshot = await collect_lag(bootstrap, [group], prefix="")
    kafka_rows = await asyncio.to_thread(_kafka_describe, bootstrap, group)

    (ours,) = snapshot.groups
    assert ours.group == group and ours.members == 0
    mine = {(p.topic, p.partition): (p.committed_offset, p.end_offset, p.lag) for p in ours.partitions}
    assert mine == kafka_rows
    assert mine == {(topic, 0): (5, 20, 15), (topic, 1): (20, 20, 0), (topic, 2): (0, 20, 20)}
    by_part = {p.partition: p for p in ours.partitions}
    assert by_part[1].lag_seconds == 0.0
    for p in (0, 2):
        age = by_part[p].lag_seconds
        assert age is not None and AGE_S - 5 < age < AGE_S + 60


async def test_the_age_is_found_behind_records_larger_than_the_probe_s_fetch_size(bootstrap: str,
                                                                                  unique: str) -> None:
    """The age probe fetches 64 KiB a partition (``AGE_FETCH_BYTES``); a committed offset at a
    record larger than that, on every partition at once, still gets its age."""
    topic, group = f"lag-large-{unique}", f"dfdg-lagtest-{unique}"
    await _create_topic(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=1024 * 1024)
    await producer.start()
    old_ms = int((time.time() - AGE_S) * 1000)
    try:
        for p in range(PARTITIONS):
            for i in range(3):
                await producer.send_and_wait(topic, b"x" * (AGE_FETCH_BYTES * 2), partition=p,
                                             timestamp_ms=old_ms + 1000 * i)
    finally:
        await producer.stop()
    await _commit(bootstrap, group, {TopicPartition(topic, p): 1 for p in range(PARTITIONS)})
    (ours,) = (await collect_lag(bootstrap, [group], prefix="")).groups
    for part in ours.partitions:
        assert part.lag == 2 and part.lag_seconds is not None and AGE_S - 6 < part.lag_seconds < AGE_S + 60


async def test_prefix_selects_pipeline_groups_and_idle_group_is_ok(bootstrap: str, unique: str) -> None:
    topic = f"lag-idle-{unique}"
    await _topic_with_messages(bootstrap, topic)
    idle, other = f"dfdgidle{unique}-worker", f"other-{unique}"
    done = {TopicPartition(topic, p): PER_PARTITION for p in range(PARTITIONS)}
    await _commit(bootstrap, idle, done)
    await _commit(bootstrap, other, done)
    tracker = LagTracker(window=3)
    for _ in range(3):
        report = tracker.observe(await collect_lag(bootstrap, None, prefix=f"dfdgidle{unique}"))
        await asyncio.sleep(0.2)
    assert [g.group for g in report.groups] == [idle]
    assert report.groups[0].status is Status.OK and report.groups[0].members == 0
    assert report.groups[0].total_lag == 0


async def test_two_live_groups_under_one_prefix_are_both_described(bootstrap: str, unique: str) -> None:
    """The worker's app group and its door group (``<app>-door``), each with a static member,
    are read in one collection; aiokafka misdecoded the second group of one describe request."""
    topic = f"lag-two-{unique}"
    await _topic_with_messages(bootstrap, topic)
    groups = [f"dfdgtwo{unique}", f"dfdgtwo{unique}-door"]
    consumers = [AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=g, group_instance_id=f"{g}-1",
                                  enable_auto_commit=False, auto_offset_reset="earliest") for g in groups]
    for consumer in consumers:
        await consumer.start()
    try:
        for consumer in consumers:
            await consumer.getmany(timeout_ms=3000)
            await consumer.commit({TopicPartition(topic, p): 5 for p in range(PARTITIONS)})
        report = LagTracker(window=3).observe(await collect_lag(bootstrap, None, prefix=f"dfdgtwo{unique}"))
    finally:
        for consumer in consumers:
            await consumer.stop()
    assert [g.group for g in report.groups] == groups
    assert [g.members for g in report.groups] == [1, 1]
    assert all(g.error is None and g.total_lag == PARTITIONS * (PER_PARTITION - 5) for g in report.groups)


def _status(report: LagReport, group: str) -> Status:
    return next(g.status for g in report.groups if g.group == group)


async def test_stopped_consumer_with_lag_is_stop(bootstrap: str, unique: str) -> None:
    topic, group = f"lag-stop-{unique}", f"dfdg-stop-{unique}"
    await _topic_with_messages(bootstrap, topic)
    await _commit(bootstrap, group, {TopicPartition(topic, p): 3 for p in range(PARTITIONS)})
    tracker = LagTracker(window=3)
    statuses = []
    for _ in range(3):
        statuses.append(_status(tracker.observe(await collect_lag(bootstrap, [group], prefix="")), group))
        await asyncio.sleep(0.3)
    assert statuses[0] is Status.OK  # one observation proves nothing yet
    assert statuses[-1] is Status.STOP


async def test_consumer_committing_same_offset_is_stall_then_ok_once_caught_up(bootstrap: str, unique: str) -> None:
    topic, group = f"lag-stall-{unique}", f"dfdg-stall-{unique}"
    await _topic_with_messages(bootstrap, topic)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        records = []
        deadline = time.monotonic() + 30
        while len(records) < PARTITIONS * PER_PARTITION and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        assert len(records) == PARTITIONS * PER_PARTITION
        stuck = {TopicPartition(topic, p): 3 for p in range(PARTITIONS)}
        tracker = LagTracker(window=3)
        for _ in range(3):
            await consumer.commit(stuck)  # alive, committing, not moving
            report = tracker.observe(await collect_lag(bootstrap, [group], prefix=""))
            await asyncio.sleep(0.3)
        group_report = next(g for g in report.groups if g.group == group)
        assert group_report.members == 1
        assert group_report.status is Status.STALL

        await consumer.commit({TopicPartition(topic, p): PER_PARTITION for p in range(PARTITIONS)})
        report = tracker.observe(await collect_lag(bootstrap, [group], prefix=""))
        assert _status(report, group) is Status.OK
        assert all(p.observed.lag == 0 and p.observed.lag_seconds == 0.0 for g in report.groups for p in g.partitions)
    finally:
        await consumer.stop()


def test_cli_lag_json_lists_the_group(bootstrap: str, unique: str, capsys: pytest.CaptureFixture[str]) -> None:
    topic, group = f"lag-cli-{unique}", f"dfdgcli{unique}"

    async def setup() -> None:
        await _topic_with_messages(bootstrap, topic)
        await _commit(bootstrap, group, {TopicPartition(topic, p): 10 for p in range(PARTITIONS)})

    asyncio.run(setup())
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["lag", "--bootstrap", bootstrap, "--prefix", group, "--json"])
    assert args.func(args) == 0
    doc = json.loads(capsys.readouterr().out)
    (g,) = doc["groups"]
    assert g["group"] == group and g["total_lag"] == PARTITIONS * (PER_PARTITION - 10)
    assert {p["partition"] for p in g["partitions"]} == set(range(PARTITIONS))

    args = parser.parse_args(["lag", "--bootstrap", bootstrap, "--prefix", group])
    assert args.func(args) == 0
    table = capsys.readouterr().out
    assert f"group {group}" in table and "COMMITTED" in table and topic in table


async def test_a_group_without_offsets_is_reported_empty_not_an_error(bootstrap: str, unique: str) -> None:
    """The app's own Faust group commits nothing since the batch loops read for it: its lag is
    empty. (aiokafka 0.14's consumer, stopped right after it started, raised CancelledError.)"""
    snapshot = await collect_lag(bootstrap, [f"dfdg-empty-{unique}"], "\x00")
    assert [(g.group, g.partitions, g.error) for g in snapshot.groups] == [(f"dfdg-empty-{unique}", (), None)]
