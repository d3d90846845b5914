"""How much memory the worker's RocksDB stores may take, as one budget.

Faust opens one RocksDB per table partition, each with its own write buffers and block cache;
at Faust's defaults that is 3 x 64 MiB of write buffers and a block cache of up to 2 GiB per
partition, so a worker owning 12 partitions could in time hold gigabytes. The budget
(``DFDG_ROCKSDB_MEMORY_MB``) is split evenly over the table's partitions: a quarter of each
share for each of two write buffers, half for the block cache. Each partition's share has a
floor, :data:`MIN_PARTITION_SHARE_MB` (two 4 MiB write buffers and an 8 MiB cache), so the
settings refuse a budget below ``MIN_PARTITION_SHARE_MB x DFDG_PARTITIONS``
(``streams.settings``); at or above it a worker owning every partition stays within the budget
(the write buffers at their fullest and a full block cache add up to the budget, rounded down
to whole bytes per partition), one owning some stays under it. The budget bounds what RocksDB
is configured to hold in write buffers and block cache; its index and filter blocks, iterators
and the allocator's overhead come on top.
"""

from __future__ import annotations

__all__ = ["DEFAULT_KEY_CACHE_CITIZENS", "DEFAULT_ROCKSDB_MEMORY_MB", "KEY_SHELF_BLOCK_CACHE", "KEY_SHELF_WRITE_BUFFER",
           "MIN_PARTITION_SHARE_MB", "rocksdb_options"]

MIB = 1024 * 1024
# 256 MiB: the citizens table's working set (the rows a day's events touch) is a small part of
# the table, and reads that miss the cache hit the OS page cache, not the disk.
DEFAULT_ROCKSDB_MEMORY_MB = 256
# Below these a RocksDB flushes and compacts so often that writes stall.
MIN_WRITE_BUFFER = 4 * MIB
MIN_BLOCK_CACHE = 8 * MIB
# The smallest share of the budget a partition can have: below it the floors above would take
# more than the share, and the stores more than the budget.
MIN_PARTITION_SHARE_MB = (2 * MIN_WRITE_BUFFER + MIN_BLOCK_CACHE) // MIB


def rocksdb_options(budget_mb: int, partitions: int) -> dict[str, int]:
    """The ``options`` of a Faust table whose RocksDB partitions share ``budget_mb``: within it
    when ``budget_mb >= MIN_PARTITION_SHARE_MB * partitions`` (the settings refuse less); below
    that each partition gets the floors, more than its share."""
    share = budget_mb * MIB // max(1, partitions)
    return {
        "write_buffer_size": max(MIN_WRITE_BUFFER, share // 4),
        "max_write_buffer_number": 2,
        "block_cache_size": max(MIN_BLOCK_CACHE, share // 2),
        "block_cache_compressed_size": 0,
        "target_file_size_base": max(MIN_WRITE_BUFFER, share // 4),
    }


# The worker's copy of its key topic (streams.key_shelf), wrapped keys in a RocksDB of its own,
# outside the budget above: two write buffers and a block cache, 32 MiB at most. Reads that
# miss the cache (a citizen whose key is not opened) hit the OS page cache.
KEY_SHELF_WRITE_BUFFER = 8 * MIB
KEY_SHELF_BLOCK_CACHE = 16 * MIB
# How many citizens' data keys the worker keeps opened (DFDG_KEY_CACHE_CITIZENS), ~250 bytes
# each: 100,000 is ~25 MiB and more citizens than a working day's events touch. Any other citizen
# costs one read of the shelf and one unwrap (a few microseconds) when next needed.
DEFAULT_KEY_CACHE_CITIZENS = 100_000
