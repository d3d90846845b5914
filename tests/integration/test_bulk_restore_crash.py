"""A worker killed while it restores its table in bulk (``streams.bulk_restore``), or while its
stores hold writes not yet flushed to disk (they keep no write-ahead log), against the real
broker: restarted, it reads on from the offset the crash left in its store, not from the start
and not past a gap, and its store then holds exactly what the changelog holds.
docs/operations.md's failure matrix, the rows "while restoring the table in bulk" and "a
SIGKILL with the table's stores partly flushed"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.integration.step_model import key_of, owed, passed_cases
from tests.integration.test_citizen_step_crash import (
    ENV,
    NOW,
    _all_delivered,
    _assert_exact,
    _publish,
    _settled,
    _wait_for_crash,
)
from tests.sealed import citizens_changelog
from tests.streams.test_bulk_restore_kafka import _ends
from tests.worker_process import WorkerProcess

pytestmark = pytest.mark.kafka


def _logged(worker: WorkerProcess, event: str) -> list[dict[str, Any]]:
    return [e for e in worker.events() if e.get("event") == event]


async def _changelog_rows(bootstrap: str, topic: str, partitions: int) -> list[dict[bytes, bytes]]:
    """The rows each changelog partition holds: the last value of each key, a tombstone removing
    it. Per partition: each has its own row of input positions, under the same key."""
    rows: list[dict[bytes, bytes]] = [{} for _ in range(partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for tp, records in (await consumer.getmany(*tps, timeout_ms=1000)).items():
                for record in records:
                    if record.value is None:
                        rows[tp.partition].pop(record.key, None)
                    else:
                        rows[tp.partition][record.key] = record.value
    finally:
        await consumer.stop()
    return rows


def _store_rows(data_dir: Path, app_id: str, partitions: int) -> list[dict[bytes, bytes]]:
    """Every row of each partition of the worker's ``citizens`` store, read after the worker
    stopped, through Faust's own store class (the worker's paths), without its offset key."""
    app = faust.App(app_id, store="rocksdb://", datadir=str(data_dir))
    store: Any = app.Table("citizens", partitions=partitions, key_type=bytes, value_type=bytes).data
    return [{k: v for k, v in store._db_for_partition(p).items() if k != store.offset_key}
            for p in range(partitions)]


async def test_r2_1_a_crash_mid_bulk_restore_reads_on_from_the_store_s_offset_and_loses_no_row(
        bootstrap: str, unique: str, tmp_path: Path) -> None:
    """One worker handles 300 cases and stops. A second, on an empty store, is SIGKILLed once its
    first run of changelog records is in the store with the offset it reaches; restarted on the
    same store, it reads exactly the records the first attempt had not, and then holds every row
    the changelog does. Nothing is sent again: every output was recorded before the restore."""
    app_id = f"restore-kill-{unique}"
    cases = passed_cases(unique, 300, NOW.date(), NOW)
    expected, keys = owed(cases, NOW), {key_of(c.cpr) for c in cases}
    first = WorkerProcess(bootstrap, app_id, tmp_path / "a", ENV).start()
    try:
        await _publish(bootstrap, cases)
        await _settled(bootstrap, expected, keys, [first])
    finally:
        first.stop()
    partitions = int(first.env["DFDG_PARTITIONS"])
    topic = citizens_changelog(app_id)
    total = sum((await _ends(bootstrap, [TopicPartition(topic, p) for p in range(partitions)])).values())

    crashing = WorkerProcess(bootstrap, app_id, tmp_path / "b", {**ENV, "DFDG_TEST_CRASH_AT": "mid-bulk-restore"},
                             ready_line="test hook: crashing")
    try:
        crashing.start(restart=True)
        _wait_for_crash(crashing)
    finally:
        crashing.kill()
    (crash,) = _logged(crashing, "test hook: crashing")
    before = int(crash["records"])
    assert 0 < before < total, f"the crash came after {before} of {total} records: not mid-restore"

    restarted = WorkerProcess(bootstrap, app_id, tmp_path / "b", ENV).start(restart=True)
    try:
        (restored,) = _logged(restarted, "table restored in bulk")
        notes, closed = await _settled(bootstrap, expected, keys, [first, restarted])
    finally:
        restarted.stop()
    # On from the offset the crash left, record for record: nothing read twice, no gap.
    assert int(restored["records"]) == total - before, (restored, before, total)
    assert _store_rows(tmp_path / "b", app_id, partitions) == await _changelog_rows(bootstrap, topic, partitions)
    _assert_exact(expected, notes, closed, "crash mid bulk restore")
    assert sum(notes.values()) == len(expected.notifications), "the restarted worker sent notifications again"


async def test_r2_1_a_kill_with_an_unflushed_tail_restores_just_that_tail_and_loses_nothing(
        bootstrap: str, unique: str, tmp_path: Path) -> None:
    """The table's stores keep no write-ahead log (``streams.faust_app.without_write_ahead_log``).
    A worker flushes them to disk after every batch of a first wave of cases, then is SIGKILLed
    at the end of a batch of a second wave before any flush: its store keeps a flushed prefix
    with the changelog offset it reaches, and loses the rest. Restarted on that store, it
    restores from the changelog the records past that offset only (some, not all), then holds
    every row the changelog does, and owes and sends every output."""
    app_id = f"flushed-kill-{unique}"
    cases = passed_cases(unique, 240, NOW.date(), NOW)
    first_wave, second_wave = cases[:160], cases[160:]
    expected, keys = owed(cases, NOW), {key_of(c.cpr) for c in cases}
    target = key_of(second_wave[-1].cpr)
    crashing = WorkerProcess(bootstrap, app_id, tmp_path / "w",
                             {**ENV, "DFDG_TEST_CRASH_AT": f"after-flushed-state:{target}"}).start()
    try:
        await _publish(bootstrap, first_wave)
        await _all_delivered(bootstrap, owed(first_wave, NOW), {key_of(c.cpr) for c in first_wave}, [crashing])
        await _publish(bootstrap, second_wave)
        _wait_for_crash(crashing)
    finally:
        crashing.kill()
    partitions = int(crashing.env["DFDG_PARTITIONS"])
    topic = citizens_changelog(app_id)
    total = sum((await _ends(bootstrap, [TopicPartition(topic, p) for p in range(partitions)])).values())

    restarted = WorkerProcess(bootstrap, app_id, tmp_path / "w", ENV).start(restart=True)
    try:
        restored = _logged(restarted, "table restored in bulk")
        notes, closed = await _settled(bootstrap, expected, keys, [restarted])
    finally:
        restarted.stop()
    # Neither nothing (the crashed batch was never flushed) nor everything (the first wave was).
    assert restored, f"nothing restored from the changelog:\n{restarted.tail()}"
    assert 0 < sum(int(r["records"]) for r in restored) < total, (restored, total)
    assert _store_rows(tmp_path / "w", app_id, partitions) == await _changelog_rows(bootstrap, topic, partitions)
    _assert_exact(expected, notes, closed, "kill with an unflushed tail")
