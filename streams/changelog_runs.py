"""A run of changelog records written into a partition of Faust's RocksDB store together with
the offset it brings the store up to, in one write batch: whatever ends the writing (a crash, a
rebalance, a stop), the store and the offset it claims agree, and Faust's recovery goes on from
there. Used by the bulk restore and by the standby follower.

The step writes these stores without RocksDB's write-ahead log (``streams.faust_app.
without_write_ahead_log``); these runs are written with it, so a crash in the middle of a
restore or of a standby copy goes on from the last run, not from the last flush. A logged run
must never follow unlogged writes still in memory (a crash would keep the run, its offset
claiming rows it lost): the writer flushes the store once, before its first run. The step does
not write a partition while its restore or its standby copy is being written."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import ConsumerRecord

__all__ = ["WriteRun", "rocksdict_writer"]

WriteRun = Callable[[Sequence[ConsumerRecord[bytes, bytes]], int], None]


def rocksdict_writer(store: Any, partition: int) -> WriteRun | None:
    """How a run of changelog records goes into one partition of Faust's RocksDB store, or None
    for a store this cannot write (not RocksDB through ``rocksdict``)."""
    if not getattr(store, "use_rocksdict", False) or not hasattr(store, "offset_key"):
        return None
    from rocksdict import WriteBatch, WriteOptions

    offset_key: bytes = store.offset_key
    logged = WriteOptions()  # RocksDB's default: with the write-ahead log
    flushed = False

    def write(records: Sequence[ConsumerRecord[bytes, bytes]], last_offset: int) -> None:
        nonlocal flushed
        # Looked up at each write, never held: Faust drops a revoked partition's handle and may
        # reopen its database, which one held here would keep locked.
        db = store._db_for_partition(partition)
        if not flushed:
            db.flush()  # the unlogged writes before this run, on disk before it
            flushed = True
        batch = WriteBatch(raw_mode=True)
        for record in records:
            if record.value is None:
                batch.delete(record.key)
            else:
                batch.put(record.key, record.value)
        batch.put(offset_key, str(last_offset).encode())
        db.write(batch, logged)

    return write
