"""Small real-Kafka helpers for the security tests: create topics, write, read as a user."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def create_topics(bootstrap: str, auth: dict[str, Any], names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **auth)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        # Two partitions, as the worker in these tests runs with (DFDG_PARTITIONS=2): the worker
        # refuses co-partitioned topics with another count.
        wanted = [NewTopic(n, 2, 1) for n in names if n not in existing]
        if wanted:
            await admin.create_topics(wanted)
    finally:
        await admin.close()


async def write(bootstrap: str, auth: dict[str, Any], topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=10000, **auth)
    try:
        await producer.start()
        await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


async def read(bootstrap: str, auth: dict[str, Any], topic: str, group: str, timeout_s: float = 15.0) -> list[bytes]:
    """Everything on ``topic`` from the group's position (earliest when new), committing it."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                                enable_auto_commit=False, request_timeout_ms=10000, **auth)
    try:
        await consumer.start()
        got: list[bytes] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                got += [r.value for r in records if r.value is not None]
            if got and not batch:
                break
        if got:
            await consumer.commit()
        return got
    finally:
        await consumer.stop()


async def topics(bootstrap: str, auth: dict[str, Any]) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **auth)
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


async def records(bootstrap: str, auth: dict[str, Any], topic: str) -> list[Any]:
    """Every record on ``topic`` up to its end, without a consumer group (a look)."""
    from aiokafka import TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                request_timeout_ms=10000, **auth)
    try:
        await consumer.start()
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            metadata = await consumer._client.fetch_all_metadata()
            partitions = metadata.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        got: list[Any] = []
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            for batch in (await consumer.getmany(*tps, timeout_ms=1000)).values():
                got += batch
        return got
    finally:
        await consumer.stop()
