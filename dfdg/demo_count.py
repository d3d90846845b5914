"""What a demo run actually caused, counted by reading the topics (not by trusting the worker).

Topics are shared by every run on a broker, so a run marks each topic's end offsets before
it starts (``mark``) and counts only records after the mark that are about its own citizens
(citizen keys) or, for dead letters, that its own worker wrote (``dlq.group``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from processors.events import DeadlineDue, Event
from processors.routing import TOPIC_PREFIX, subscriber_for_topic
from schemas.codec import Codec, CodecError
from schemas.records import Notification
from schemas.topics import (
    DATA_AREA_CLOSED,
    DEAD_LETTER,
    DELETION_COMPLETED,
    archive_receipts_topic,
    citizen_events_topic,
)
from sinks.crypto import is_sealed
from streams.kafka_auth import client_config

__all__ = ["Counts", "Marks", "count_run", "list_topics", "mark"]

Marks = dict[str, dict[int, int]]  # topic -> partition -> first offset of this run
OUTPUT_TOPICS = (DATA_AREA_CLOSED, DEAD_LETTER, DELETION_COMPLETED)


@dataclass
class Counts:
    events_in: int = 0
    deadlines_fired: int = 0
    notifications_by_role: Counter[str] = field(default_factory=Counter)
    notifications_by_kind: Counter[str] = field(default_factory=Counter)
    notifications_by_subscriber: Counter[str] = field(default_factory=Counter)
    duplicate_notifications: int = 0
    data_areas_closed: int = 0
    citizens_deleted: int = 0
    deletions_completed: int = 0
    archive_receipts: int = 0
    dead_letters_by_code: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "events_in": self.events_in, "deadlines_fired": self.deadlines_fired,
            "notifications": sum(self.notifications_by_role.values()),
            "notifications_by_role": dict(sorted(self.notifications_by_role.items())),
            "notifications_by_kind": dict(sorted(self.notifications_by_kind.items())),
            "notifications_by_subscriber": dict(sorted(self.notifications_by_subscriber.items())),
            "duplicate_notifications": self.duplicate_notifications,
            "data_areas_closed": self.data_areas_closed, "citizens_deleted": self.citizens_deleted,
            "deletions_completed": self.deletions_completed, "archive_receipts_on_topic": self.archive_receipts,
            "dead_letters": sum(self.dead_letters_by_code.values()),
            "dead_letters_by_code": dict(sorted(self.dead_letters_by_code.items())),
        }


async def list_topics(bootstrap: str) -> dict[str, int]:
    """Every topic on the cluster and its partition count."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, **client_config())
    await consumer.start()
    try:
        metadata = await consumer._client.fetch_all_metadata()
        return {t: len(metadata.partitions_for_topic(t) or ()) for t in metadata.topics()}
    finally:
        await consumer.stop()


def _watched(topics: Collection[str], app_id: str) -> list[str]:
    wanted = {*OUTPUT_TOPICS, citizen_events_topic(app_id), archive_receipts_topic(app_id)}
    return sorted(t for t in topics if t in wanted or t.startswith(TOPIC_PREFIX + "."))


async def mark(bootstrap: str, app_id: str) -> Marks:
    """The end offset of every output and notification topic now: where this run's records begin."""
    topics = await list_topics(bootstrap)
    tps = [TopicPartition(t, p) for t in _watched(topics, app_id) for p in range(topics[t])]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, **client_config())
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps) if tps else {}
    finally:
        await consumer.stop()
    marks: Marks = {}
    for tp, end in ends.items():
        marks.setdefault(tp.topic, {})[tp.partition] = end
    return marks


async def _records_after(bootstrap: str, topic: str, partitions: int,
                         marks: Marks) -> AsyncIterator[tuple[bytes | None, list[tuple[str, bytes]], bytes]]:
    """Records of ``topic`` from its mark (0 for a topic born during the run) to its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **client_config())
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        todo = {}
        for tp in tps:
            start = marks.get(topic, {}).get(tp.partition, 0)
            if ends[tp] > start:
                consumer.seek(tp, start)
                todo[tp] = ends[tp]
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=2000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset < todo.get(tp, -1):
                        yield r.key, list(r.headers or ()), r.value or b""
                if records and records[-1].offset + 1 >= todo.get(tp, 0):
                    todo.pop(tp, None)
    finally:
        await consumer.stop()


def _header(headers: list[tuple[str, bytes]], name: str) -> str:
    return next((v.decode(errors="replace") for k, v in headers if k == name), "")


async def count_run(bootstrap: str, marks: Marks, citizen_keys: Collection[str], app_id: str) -> Counts:
    """Count this run's records on every watched topic (see the module docstring)."""
    codec = Codec.default()
    topics = await list_topics(bootstrap)
    keys = set(citizen_keys)
    counts = Counts()
    seen_notifications: set[str] = set()
    deleted: set[str] = set()
    for topic in _watched(topics, app_id):
        async for key, headers, value in _records_after(bootstrap, topic, topics[topic], marks):
            if topic == DEAD_LETTER:
                if _header(headers, "dlq.group") == app_id:
                    counts.dead_letters_by_code[_header(headers, "dlq.error.code")] += 1
                continue
            if (key or b"").decode(errors="replace") not in keys:
                continue  # another run's or another tool's record
            if topic == citizen_events_topic(app_id) and is_sealed(value):
                counts.events_in += 1  # admitted events travel sealed (docs/security.md)
                continue
            try:
                record = codec.decode(value)
            except CodecError:
                continue
            if topic == citizen_events_topic(app_id):
                if isinstance(record, DeadlineDue):
                    counts.deadlines_fired += 1
                elif isinstance(record, Event):
                    counts.events_in += 1
            elif isinstance(record, Notification):
                if record.notification_id in seen_notifications:
                    counts.duplicate_notifications += 1  # at-least-once: a redelivery, not a new message
                    continue
                seen_notifications.add(record.notification_id)
                subscriber = subscriber_for_topic(topic)
                counts.notifications_by_role[subscriber.split(":")[0]] += 1
                counts.notifications_by_subscriber[subscriber] += 1
                counts.notifications_by_kind[record.kind] += 1
            elif topic == DATA_AREA_CLOSED:
                counts.data_areas_closed += 1
            elif topic == DELETION_COMPLETED:
                counts.deletions_completed += 1
                deleted.add(key.decode() if key else "")
            elif topic == archive_receipts_topic(app_id):
                counts.archive_receipts += 1
    counts.citizens_deleted = len(deleted)
    return counts
