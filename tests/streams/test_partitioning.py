"""The worker's partitioner must agree with Kafka's default partitioner for every key: the
citizens table is co-partitioned with the citizen-events topic, and other producers' records
for the same key must land on the same partition."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference_murmur2

from streams.partitioning import murmur2, partition_of


def test_murmur2_equals_the_reference_for_every_length_and_byte() -> None:
    rng = random.Random(20261129)
    keys = [bytes(rng.randrange(256) for _ in range(length)) for length in range(0, 130) for _ in range(20)]
    keys += [b"", b"\xff" * 7, b"\x00" * 9, "c-æøå".encode()]
    for key in keys:
        assert murmur2(key) & 0x7FFFFFFF == reference_murmur2(key) & 0x7FFFFFFF, key


def test_partition_of_equals_kafkas_default_partitioner() -> None:
    rng = random.Random(7)
    partitioner = DefaultPartitioner()
    for count in (1, 3, 4, 8, 12, 50):
        every = list(range(count))
        for _ in range(300):
            key = f"{rng.getrandbits(128):032x}:{rng.getrandbits(64):016x}".encode()
            assert partition_of(key, count) == partitioner(key, every, every)
