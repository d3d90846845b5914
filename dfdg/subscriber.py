"""The downstream subscriber's client: reads its own notification topic, drops duplicates by
``notification_id`` and commits only after the caller has handled a notification.

Delivery is at-least-once: after a crash the last uncommitted notifications come again, with
the same ``notification_id``; the de-duplication window (the last ``dedup_window`` ids)
makes that invisible to a handler that runs in one process. A system that must survive its
own restarts without repeats stores the ids it has acted on next to its data.

Given a registry (``registry_path`` or ``registry_loader``), the helper also honours a
suspension: while the subscriber is ``suspended`` (or not registered), ``notifications()``
yields nothing and ``commit()`` commits nothing; on resume it reads on from where it stood, so
every notification written meanwhile arrives, per citizen in order. This is client-side
enforcement only, a courtesy to well-behaved clients: the broker enforces it with ACLs once
security is on."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType

from aiokafka import AIOKafkaConsumer, TopicPartition

from dfdg.subscriber_keys import SubscriberKeys
from processors.routing import topic_for_subscriber
from processors.subscribers import Registry
from schemas.codec import Codec
from schemas.records import Notification
from streams.kafka_auth import client_config

__all__ = ["Subscriber", "read_topic"]


class Subscriber:
    def __init__(self, subscriber_id: str, bootstrap: str, group_id: str | None = None,
                 from_beginning: bool = True, dedup_window: int = 100_000, codec: Codec | None = None,
                 kek: bytes | None = None,
                 registry_path: Path | str | None = None, registry_loader: Callable[[], Registry] | None = None,
                 registry_check_s: float = 2.0, **consumer_config: object) -> None:
        self.subscriber_id = subscriber_id
        self._bootstrap = bootstrap
        self._kek = kek
        self._keys: SubscriberKeys | None = None
        self.topic = topic_for_subscriber(subscriber_id)
        self._codec = codec or Codec.default()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._window = dedup_window
        # Consumer groups carry the subscriber's id as prefix: the broker's ACLs allow only those.
        self._consumer = AIOKafkaConsumer(
            self.topic, bootstrap_servers=bootstrap,
            group_id=group_id or f"{subscriber_id.replace(':', '.')}.default",
            enable_auto_commit=False, auto_offset_reset="earliest" if from_beginning else "latest",
            **{**client_config(), **consumer_config},  # type: ignore[arg-type]
        )
        self._pending: dict[TopicPartition, int] = {}
        if registry_loader is None and registry_path is not None:
            from sinks import registry_store

            path = registry_path
            registry_loader = lambda: registry_store.load(path)  # noqa: E731 - a one-line closure
        self._registry_loader = registry_loader
        self._registry_check_s = registry_check_s
        self._open = True
        self._checked_at: float | None = None

    def access_open(self) -> bool:
        """False while the registry says this subscriber is suspended (or does not know it);
        re-read at most every ``registry_check_s`` seconds. Always True without a registry."""
        if self._registry_loader is None:
            return True
        now = time.monotonic()
        if self._checked_at is None or now - self._checked_at >= self._registry_check_s:
            sub = self._registry_loader().get(self.subscriber_id)
            self._open = sub is not None and sub.state != "suspended"
            self._checked_at = now
        return self._open

    async def __aenter__(self) -> Subscriber:
        await self._consumer.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._consumer.stop()
        if self._keys is not None:
            await self._keys.stop()

    async def personal(self, notification: Notification) -> dict[str, str] | None:
        """The notification's personal fields (e.g. ``{"cpr": ...}``), opened with this subscriber's
        key-encryption key (``DFDG_SUBSCRIBER_KEKS_DIR``; development keys in dev mode). Raises
        ``streams.keystore.UnknownKey`` once the citizen has been deleted."""
        if self._keys is None:
            self._keys = SubscriberKeys(self._bootstrap, self.subscriber_id, self._kek)
            await self._keys.start()
        return await self._keys.personal(notification)

    async def notifications(self, idle_timeout_s: float | None = None) -> AsyncIterator[Notification]:
        """Yield new notifications; stop after ``idle_timeout_s`` without any (None: forever)."""
        while True:
            if not self.access_open():
                # Still polled, paused, so the group keeps this member; nothing is read.
                self._consumer.pause(*self._consumer.assignment())
                for tp, records in (await self._consumer.getmany(timeout_ms=200)).items():
                    self._consumer.seek(tp, records[0].offset)  # a fresh assignment slipped through
                if idle_timeout_s is not None:
                    await asyncio.sleep(max(0.0, idle_timeout_s - 0.2))
                    return
                await asyncio.sleep(0.8)
                continue
            self._consumer.resume(*self._consumer.paused())
            batch = await self._consumer.getmany(timeout_ms=int((idle_timeout_s or 1.0) * 1000))
            if not batch and idle_timeout_s is not None:
                return
            closed = False
            for tp, records in batch.items():
                for record in records:
                    if closed or not self.access_open():
                        # Suspended mid-batch: put the rest back, to be read after resume.
                        closed = True
                        self._consumer.seek(tp, record.offset)
                        break
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
        """Commit what has been yielded so far: call after handling, never before. While the
        subscriber is suspended nothing is committed; the first commit after resume covers it."""
        if self._pending and self.access_open():
            await self._consumer.commit(dict(self._pending))
            self._pending.clear()


async def read_topic(bootstrap: str, topic: str, from_beginning: bool = True, follow: bool = False,
                     idle_timeout_s: float = 2.0) -> AsyncIterator[tuple[object, list[tuple[str, bytes]], bytes]]:
    """Read a topic without a consumer group (a look, not a subscription): yields
    (key, headers, value) up to the end offsets, or forever with ``follow``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                **client_config())
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
