"""The worker's batch producer against a real broker: every record of a step lands, in order,
on the partition Kafka's default partitioner picks, with the offsets it reports, also when a
partition's records overflow one batch."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.batch_producer import BATCH_BYTES, BatchProducer

pytestmark = pytest.mark.kafka

PARTITIONS = 4


async def _create(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()


async def _read_all(bootstrap: str, topic: str, expected: int) -> dict[int, list[tuple[int, bytes, bytes]]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: dict[int, list[tuple[int, bytes, bytes]]] = {}
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        for _ in range(100):
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                found.setdefault(tp.partition, []).extend((r.offset, r.key or b"", r.value or b"") for r in records)
            if sum(map(len, found.values())) >= expected:
                break
    finally:
        await consumer.stop()
    return found


async def test_a_steps_records_land_in_order_where_kafkas_partitioner_puts_their_keys(bootstrap: str,
                                                                                   unique: str) -> None:
    topic, reference_topic = f"batch-{unique}", f"batch-ref-{unique}"
    await _create(bootstrap, topic)
    await _create(bootstrap, reference_topic)
    producer = BatchProducer(bootstrap, 1_000_000, {})
    keys = [f"citizen-{i:04d}".encode() for i in range(200)]
    # Big values: partition 0..3 each get more than one batch's worth.
    value_size = BATCH_BYTES // 20
    records: dict[tuple[str, int], list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]] = {}
    for i, key in enumerate(keys):
        partition = await producer.partition_for(topic, key)
        records.setdefault((topic, partition), []).append((key, b"%06d" % i + b"x" * value_size, [("n", b"%d" % i)]))
    try:
        last = await producer.send(records)
    finally:
        await producer.stop()
    found = await _read_all(bootstrap, topic, len(keys))
    for (_, partition), sent in records.items():
        landed = found[partition]
        assert [key for _, key, _ in landed] == [key for key, _, _ in sent]  # all there, in order
        assert last[(topic, partition)] == landed[-1][0]  # the offsets it reports are the broker's
    assert any(len(rows) * value_size > BATCH_BYTES for rows in records.values())  # overflowed a batch

    # The reference: aiokafka's own producer with Kafka's default partitioner.
    reference = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await reference.start()
    try:
        placed = {key: (await reference.send_and_wait(reference_topic, b"", key=key)).partition for key in keys}
    finally:
        await reference.stop()
    ours = {key: partition for (_, partition), rows in records.items() for key, _, _ in rows}
    assert ours == placed
