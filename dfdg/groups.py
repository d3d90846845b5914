"""Consumer-group offsets set by hand: start a brand-new group at the end of topics."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from streams.group_offsets import commit_from_outside, committed_offsets
from streams.kafka_auth import client_config

__all__ = ["start_group_at_end"]


async def start_group_at_end(bootstrap: str, group: str, topics: Iterable[str],
                             auth: dict[str, Any] | None = None) -> int:
    """Commit a NEW ``group``'s offsets at the current end of ``topics`` (those that exist), so a
    new app reads only what is published from now on instead of the topics' whole history (demo
    runs and tests on a shared broker). A group that has committed anything is left alone.
    Returns the number of partitions set."""
    config = client_config() if auth is None else auth
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **config)
    await admin.start()
    try:
        if await committed_offsets(admin, group):
            return 0
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **config)
    await consumer.start()
    try:
        metadata = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(t, p) for t in topics for p in sorted(metadata.partitions_for_topic(t) or ())]
        ends = await consumer.end_offsets(tps) if tps else {}
    finally:
        await consumer.stop()
    if tps:
        await commit_from_outside(bootstrap, group, {tp: OffsetAndMetadata(end, "") for tp, end in ends.items()},
                                  config)
    return len(tps)
