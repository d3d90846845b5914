"""Consumer-group offsets set by hand: start a brand-new group at the end of topics."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError
from aiokafka.structs import OffsetAndMetadata

from streams.kafka_auth import client_config

__all__ = ["start_group_at_end"]


async def start_group_at_end(bootstrap: str, group: str, topics: Iterable[str],
                             auth: dict[str, Any] | None = None) -> int:
    """Commit a NEW ``group``'s offsets at the current end of ``topics`` (those that exist), so a
    new app reads only what is published from now on instead of the topics' whole history (demo
    runs and tests on a shared broker). A group that has committed anything is left alone.
    Returns the number of partitions set."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(client_config() if auth is None else auth))
    await admin.start()
    try:
        for attempt in range(60):
            try:
                if await admin.list_consumer_group_offsets(group):
                    return 0
                break
            except GroupCoordinatorNotAvailableError:
                # A fresh broker creates its offsets topic on first use; that takes a moment.
                if attempt == 59:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                **(client_config() if auth is None else auth))
    await consumer.start()
    try:
        metadata = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(t, p) for t in topics for p in sorted(metadata.partitions_for_topic(t) or ())]
        if not tps:
            return 0
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.commit({tp: OffsetAndMetadata(end, "") for tp, end in ends.items()})
        return len(tps)
    finally:
        await consumer.stop()
