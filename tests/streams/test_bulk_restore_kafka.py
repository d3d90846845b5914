"""The bulk restore (issue 15: recovery of a million citizens in a minute, not Faust's ~2,000
records/s) against a real broker and Faust's own RocksDB store: every row the changelog holds
up to where the restore began, tombstones applied, nothing past that point, and the persisted
offset Faust's recovery goes on from written with the rows."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.types import TP

from streams.bulk_restore import PartitionRestore, restore, rocksdict_writer
from tests.streams.test_ingress_loop_kafka import _topic

pytestmark = pytest.mark.kafka


async def _send(bootstrap: str, topic: str, rows: list[tuple[int, bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for partition, key, value in rows:
            await producer.send(topic, value, key=key, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


def _store(tmp_path: Path, name: str) -> Any:
    """Faust's RocksDB store of a table, as the worker's citizens table has it (not started:
    the store opens a partition's database when asked for it)."""
    app = faust.App(f"restore-{name}", store="rocksdb://", datadir=str(tmp_path))
    table = app.Table(name, partitions=2, key_type=bytes, value_type=bytes)
    return table.data


async def _ends(bootstrap: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def _restore(bootstrap: str, store: Any, topic: str, starts: dict[int, int],
                   stops: dict[TopicPartition, int]) -> int:
    parts = []
    for tp, stop in stops.items():
        write = rocksdict_writer(store, tp.partition)
        assert write is not None
        parts.append(PartitionRestore(tp, starts.get(tp.partition, 0), stop, write))
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        return await restore(consumer, parts)
    finally:
        await consumer.stop()


async def test_a_bulk_restore_holds_every_row_up_to_its_stop_and_the_offset_faust_goes_on_from(
        bootstrap: str, unique: str, tmp_path: Path) -> None:
    topic = f"changelog-{unique}"
    await _topic(bootstrap, topic, partitions=2)
    rows: list[tuple[int, bytes, bytes | None]] = [
        (i % 2, f"c{i:04d}".encode(), f"row-{i}".encode()) for i in range(3000)]
    rows += [(1, b"c0001", None), (0, b"c0002", b"row-2-again")]  # a tombstone and a newer row
    await _send(bootstrap, topic, rows)
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    stops = await _ends(bootstrap, tps)
    # Written after the restore began: Faust's recovery reads these, from the offset left here.
    await _send(bootstrap, topic, [(0, b"late-0", b"late"), (1, b"late-1", b"late")])

    store = _store(tmp_path, unique)
    written = await _restore(bootstrap, store, topic, {}, stops)

    assert written == len(rows)
    db0, db1 = store._db_for_partition(0), store._db_for_partition(1)
    assert db0.get(b"c0000") == b"row-0" and db1.get(b"c2999") == b"row-2999"
    assert db0.get(b"c0002") == b"row-2-again"
    assert db1.get(b"c0001") is None  # the tombstone deleted it
    assert db0.get(b"late-0") is None and db1.get(b"late-1") is None
    assert sum(1 for _ in store._visible_keys(db0)) + sum(1 for _ in store._visible_keys(db1)) == 2999
    for tp in tps:
        assert store.persisted_offset(TP(topic, tp.partition)) == stops[tp] - 1


async def test_a_restore_from_a_persisted_offset_reads_only_what_came_after(
        bootstrap: str, unique: str, tmp_path: Path) -> None:
    """A worker whose store survived (a restart, not a new machine) reads only the tail."""
    topic = f"changelog-{unique}"
    await _topic(bootstrap, topic, partitions=2)
    await _send(bootstrap, topic, [(0, f"k{i}".encode(), b"old") for i in range(100)])
    tp = TopicPartition(topic, 0)
    first_stop = (await _ends(bootstrap, [tp]))[tp]
    store = _store(tmp_path, unique)
    assert await _restore(bootstrap, store, topic, {}, {tp: first_stop}) == 100

    await _send(bootstrap, topic, [(0, b"k1", b"new"), (0, b"k200", b"new")])
    stop = (await _ends(bootstrap, [tp]))[tp]
    persisted = store.persisted_offset(TP(topic, 0))
    assert await _restore(bootstrap, store, topic, {0: persisted + 1}, {tp: stop}) == 2
    db = store._db_for_partition(0)
    assert db.get(b"k1") == b"new" and db.get(b"k200") == b"new" and db.get(b"k2") == b"old"
    assert store.persisted_offset(TP(topic, 0)) == stop - 1


def test_a_store_that_is_not_rocksdb_is_left_to_faust(tmp_path: Path) -> None:
    app = faust.App("restore-memory", store="memory://", datadir=str(tmp_path))
    table = app.Table("memory-table", partitions=2, key_type=bytes, value_type=bytes)
    assert rocksdict_writer(table.data, 0) is None


async def test_a_restore_cut_short_leaves_the_store_and_its_offset_agreeing(
        bootstrap: str, unique: str, tmp_path: Path) -> None:
    """A rebalance cancels the restore between two runs of records: the store then holds exactly
    the records up to the offset it claims, so Faust's recovery goes on from there."""
    topic = f"changelog-{unique}"
    await _topic(bootstrap, topic, partitions=2)
    await _send(bootstrap, topic, [(0, f"k{i:05d}".encode(), b"x" * 200) for i in range(2000)])
    tp = TopicPartition(topic, 0)
    stop = (await _ends(bootstrap, [tp]))[tp]
    store = _store(tmp_path, unique)
    write = rocksdict_writer(store, 0)
    assert write is not None
    runs: list[int] = []

    def write_then_cut(records: Any, last_offset: int) -> None:
        write(records, last_offset)
        runs.append(last_offset)
        if len(runs) == 2:
            raise asyncio.CancelledError  # as a rebalance's cancel lands at the next await

    # Small fetches, so the partition comes in many runs.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                max_partition_fetch_bytes=16 * 1024)
    await consumer.start()
    try:
        with pytest.raises(asyncio.CancelledError):
            await restore(consumer, [PartitionRestore(tp, 0, stop, write_then_cut)])
    finally:
        await consumer.stop()

    claimed = store.persisted_offset(TP(topic, 0))
    assert claimed == runs[-1] < stop - 1
    db = store._db_for_partition(0)
    assert db.get(f"k{claimed:05d}".encode()) is not None and db.get(f"k{claimed + 1:05d}".encode()) is None
    assert sum(1 for _ in store._visible_keys(db)) == claimed + 1
