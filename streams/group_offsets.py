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

__all__ = ["commit_from_outside", "committed_offsets", "inherit_offsets"]

log = get_logger("dfdg.worker")


async def inherit_offsets(bootstrap: str, group: str, from_group: str, topics: Sequence[str],
                          client_config: Mapping[str, Any]) -> int:
    """Commit ``from_group``'s offsets on ``topics`` for ``group`` if ``group`` has never committed.

    The worker's batch loops read through groups of their own (``<app>-door``, ``<app>-citizen``);
    a worker that read the same topics through Faust's group before, or a test or demo that set
    that group at the topics' ends, must not make them start from the beginning. Returns the
    number of partitions set."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_config)
    await admin.start()
    try:
        if await committed_offsets(admin, group):
            return 0
        theirs = await committed_offsets(admin, from_group)
    finally:
        await admin.close()
    offsets = {tp: OffsetAndMetadata(meta.offset, "") for tp, meta in theirs.items()
               if tp.topic in topics and meta.offset >= 0}
    if not offsets:
        return 0
    try:
        await commit_from_outside(bootstrap, group, offsets, client_config)
    except KafkaError as exc:
        log.warning("group not started at the app group's offsets", group=group, error=type(exc).__name__)
        return 0
    log.info("group starts at the app group's offsets", group=group, partitions=len(offsets))
    return len(offsets)


async def committed_offsets(admin: AIOKafkaAdminClient, group: str) -> dict[Any, Any]:
    """``group``'s committed offsets; waits for a fresh broker's offsets topic (made on first use)."""
    for attempt in range(60):
        try:
            offsets: dict[Any, Any] = await admin.list_consumer_group_offsets(group)
            return offsets
        except GroupCoordinatorNotAvailableError:
            if attempt == 59:
                raise
            await asyncio.sleep(0.5)
    return {}


async def commit_from_outside(bootstrap: str, group: str, offsets: Mapping[Any, OffsetAndMetadata],
                              client_config: Mapping[str, Any]) -> None:
    """Commit ``offsets`` for ``group`` as a client that is not one of its members. A group with
    live members refuses it, so this cannot move a running consumer's progress back."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                **client_config)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(dict(offsets))
    finally:
        await consumer.stop()
