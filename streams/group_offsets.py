"""Where a new consumer group of the worker starts: where the app's own group left its topics."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from streams.logs import get_logger

__all__ = ["inherit_offsets"]

log = get_logger("dfdg.worker")


async def inherit_offsets(bootstrap: str, group: str, from_group: str, topics: Sequence[str],
                          client_config: Mapping[str, Any]) -> int:
    """Commit ``from_group``'s offsets on ``topics`` for ``group`` if ``group`` has never committed.

    The worker's batch loops read through groups of their own (``<app>-door``, ``<app>-citizen``);
    a worker that read the same topics through Faust's group before, or a test or demo that set
    that group at the topics' ends, must not make them start from the beginning. A group with
    members refuses a commit from outside it, so two workers starting at once cannot move each
    other's progress back. Returns the number of partitions set."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_config)
    await admin.start()
    try:
        for attempt in range(60):
            try:
                if await admin.list_consumer_group_offsets(group):
                    return 0
                theirs = await admin.list_consumer_group_offsets(from_group)
                break
            except GroupCoordinatorNotAvailableError:
                # A fresh broker creates its offsets topic on first use; that takes a moment.
                if attempt == 59:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await admin.close()
    offsets = {tp: OffsetAndMetadata(meta.offset, "") for tp, meta in theirs.items()
               if tp.topic in topics and meta.offset >= 0}
    if not offsets:
        return 0
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                **client_config)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    except KafkaError as exc:
        log.warning("group not started at the app group's offsets", group=group, error=type(exc).__name__)
        return 0
    finally:
        await consumer.stop()
    log.info("group starts at the app group's offsets", group=group, partitions=len(offsets))
    return len(offsets)
