"""The downstream subscriber's client: reads its own notification topic, drops duplicates by
``notification_id`` and commits only after the caller has handled a notification.

Delivery is at-least-once: after a crash the last uncommitted notifications come again, with
the same ``notification_id``; the de-duplication window (the last ``dedup_window`` ids)
makes that invisible to a handler that runs in one process. A system that must survive its
own restarts without repeats stores the ids it has acted on next to its data."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from types import TracebackType

from aiokafka import AIOKafkaConsumer, TopicPartition

from processors.routing import topic_for_subscriber
from schemas.codec import Codec
from schemas.records import Notification

__all__ = ["Subscriber", "read_topic"]


class Subscriber:
    def __init__(self, subscriber_id: str, bootstrap: str, group_id: str | None = None,
                 from_beginning: bool = True, dedup_window: int = 100_000, codec: Codec | None = None,
                 **consumer_config: object) -> None:
        self.subscriber_id = subscriber_id
        self.topic = topic_for_subscriber(subscriber_id)
        self._codec = codec or Codec.default()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._window = dedup_window
        # Consumer groups carry the subscriber's id as prefix: the broker's ACLs allow only those.
        self._consumer = AIOKafkaConsumer(
            self.topic, bootstrap_servers=bootstrap,
            group_id=group_id or f"{subscriber_id.replace(':', '.')}.default",
            enable_auto_commit=False, auto_offset_reset="earliest" if from_beginning else "latest",
            **consumer_config,  # type: ignore[arg-type]
        )
        self._pending: dict[TopicPartition, int] = {}

    async def __aenter__(self) -> Subscriber:
        await self._consumer.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._consumer.stop()

    async def notifications(self, idle_timeout_s: float | None = None) -> AsyncIterator[Notification]:
        """Yield new notifications; stop after ``idle_timeout_s`` without any (None: forever)."""
        while True:
            batch = await self._consumer.getmany(timeout_ms=int((idle_timeout_s or 1.0) * 1000))
            if not batch and idle_timeout_s is not None:
                return
            for tp, records in batch.items():
                for record in records:
                    self._pending[tp] = record.offset + 1
                    notification = self._codec.decode(record.value)
                    assert isinstance(notification, Notification)
                    if notification.notification_id in self._seen:
                        continue
                    self._seen[notification.notification_id] = None
                    if len(self._seen) > self._window:
                        self._seen.popitem(last=False)
                    yield notification

    async def commit(self) -> None:
        """Commit what has been yielded so far: call after handling, never before."""
        if self._pending:
            await self._consumer.commit(dict(self._pending))
            self._pending.clear()


async def read_topic(bootstrap: str, topic: str, from_beginning: bool = True, follow: bool = False,
                     idle_timeout_s: float = 2.0) -> AsyncIterator[tuple[object, list[tuple[str, bytes]], bytes]]:
    """Read a topic without a consumer group (a look, not a subscription): yields
    (key, headers, value) up to the end offsets, or forever with ``follow``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        # A consumer without a subscription knows no topic's partitions until it asks the cluster.
        metadata = await consumer._client.fetch_all_metadata()
        partitions = metadata.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return
        consumer.assign(tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        end = await consumer.end_offsets(tps)
        while True:
            batch = await consumer.getmany(*tps, timeout_ms=int(idle_timeout_s * 1000))
            for records in batch.values():
                for record in records:
                    yield record.key, list(record.headers or ()), record.value
            if not follow:
                positions = {tp: await consumer.position(tp) for tp in tps}
                if all(positions[tp] >= end[tp] for tp in tps):
                    return
    finally:
        await consumer.stop()
