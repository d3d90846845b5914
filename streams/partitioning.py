"""Kafka's default partitioner (murmur2 of the key), as the Java client and aiokafka compute it.

Records must land where every earlier version of the worker, and any other producer, puts the
same key: the citizens table is co-partitioned with the citizen-events topic. Every key row's
key (``<citizen>:<key id>``, 77 bytes) is new, so the hash is computed for each one, several
times per new citizen. Pure Python took ~7.6 µs for such a key (~4% of a draining worker, in
docs/performance.md); the ``murmurhash2`` wheel (Rust) takes ~0.4 µs, and
``tests/streams/test_partitioning.py`` holds it equal to aiokafka's own ``murmur2``.
"""

from __future__ import annotations

from murmurhash2 import murmurhash2

__all__ = ["murmur2", "partition_of"]

# Kafka's seed (org.apache.kafka.common.utils.Utils.murmur2).
_SEED = 0x9747B28C


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of ``data`` as an unsigned 32-bit number."""
    return murmurhash2(data, _SEED)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` among ``partitions``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
