"""How much memory the worker's RocksDB stores may take, as one budget.

Faust opens one RocksDB per table partition, each with its own write buffers and block cache;
at Faust's defaults that is 3 x 64 MiB of write buffers and a block cache of up to 2 GiB per
partition, so a worker owning 12 partitions could in time hold gigabytes. The budget
(``DFDG_ROCKSDB_MEMORY_MB``) is split evenly over the table's partitions: a quarter of each
share for each of two write buffers, half for the block cache. A worker owning every
partition then stays within the budget; one owning some stays under it.
"""

from __future__ import annotations

__all__ = ["DEFAULT_ROCKSDB_MEMORY_MB", "rocksdb_options"]

MIB = 1024 * 1024
# 256 MiB: the citizens table's working set (the rows a day's events touch) is a small part of
# the table, and reads that miss the cache hit the OS page cache, not the disk.
DEFAULT_ROCKSDB_MEMORY_MB = 256
# Below these a RocksDB flushes and compacts so often that writes stall.
MIN_WRITE_BUFFER = 4 * MIB
MIN_BLOCK_CACHE = 8 * MIB


def rocksdb_options(budget_mb: int, partitions: int) -> dict[str, int]:
    """The ``options`` of a Faust table whose RocksDB partitions share ``budget_mb``."""
    share = budget_mb * MIB // max(1, partitions)
    return {
        "write_buffer_size": max(MIN_WRITE_BUFFER, share // 4),
        "max_write_buffer_number": 2,
        "block_cache_size": max(MIN_BLOCK_CACHE, share // 2),
        "block_cache_compressed_size": 0,
        "target_file_size_base": max(MIN_WRITE_BUFFER, share // 4),
    }
