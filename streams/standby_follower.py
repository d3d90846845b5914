"""This worker's standby copies of table partitions, kept up to date in bulk.

With ``DFDG_STANDBY_REPLICAS`` set, Faust's assignor gives each table partition to one worker
and a standby copy of it to others. Faust would follow a standby's changelog a record at a
time, through the path its recovery uses (~2,000 records/s on this machine, a core's worth of
work for a busy partition). Here a plain consumer follows the standby partitions and writes each
fetched run into the partition's RocksDB as one write batch with the offset it reaches, the same
write as the bulk restore (``streams.bulk_restore``). When a standby is promoted (its worker
died), Faust's recovery finds that offset in the store and the bulk restore reads only the rest.

The follower runs between rebalances only: ``stop()`` is called the moment a rebalance begins,
before Faust hands any store partition over, and being synchronous it returns with no write in
flight (writes happen between awaits, never across one). It keeps no store handle between
writes, so Faust can close and reopen a revoked partition's database.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.changelog_runs import WriteRun
from streams.logs import get_logger

__all__ = ["StandbyFollower", "StandbyPart"]

log = get_logger("dfdg.standby")

# Each standby partition's start offset (the store's persisted offset + 1), and how a run of
# records goes into its store with the offset they reach.
StandbyPart = tuple[int, WriteRun]

# After a failure (the broker away, say), the follower starts again from where it got to.
RETRY_S = 5.0


class StandbyFollower:
    def __init__(self, bootstrap: str, consumer_config: Mapping[str, object], fetch_partition_bytes: int) -> None:
        self._bootstrap = bootstrap
        self._config = dict(consumer_config)
        self._fetch_bytes = fetch_partition_bytes
        self._task: asyncio.Task[None] | None = None

    def follow(self, parts: Mapping[TopicPartition, StandbyPart]) -> None:
        """Follow ``parts`` from their starts until ``stop()``; what was followed before stops."""
        self.stop()
        if parts:
            self._task = asyncio.create_task(self._follow(dict(parts)))

    def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None

    async def _follow(self, parts: dict[TopicPartition, StandbyPart]) -> None:
        """Follow until cancelled; a failure is logged and the follow begins again from where
        the stores got to (a standby is a spare: the actives go on without it meanwhile)."""
        began, written = time.monotonic(), [0]
        try:
            while True:
                try:
                    await self._follow_once(parts, began, written)
                except Exception as exc:  # noqa: BLE001 - logged, retried
                    log.warning("standby copies not followed for now", error=type(exc).__name__, retry_s=RETRY_S)
                await asyncio.sleep(RETRY_S)
        finally:
            parts.clear()  # no store handle outlives the follower

    async def _follow_once(self, parts: dict[TopicPartition, StandbyPart], began: float, written: list[int]) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", max_partition_fetch_bytes=self._fetch_bytes,
                                    **self._config)
        try:
            await consumer.start()
            consumer.assign(list(parts))
            for tp, (start, _) in parts.items():
                consumer.seek(tp, start)
            ends = await consumer.end_offsets(list(parts))
            behind = {tp for tp in parts if parts[tp][0] < ends[tp]}
            log.info("standby copies followed", partitions=sorted(tp.partition for tp in parts),
                     behind=sum(ends[tp] - parts[tp][0] for tp in behind),
                     starts={tp.partition: start for tp, (start, _) in parts.items()})
            while True:
                fetched = await consumer.getmany(timeout_ms=1000)
                for tp, records in fetched.items():
                    if records:
                        _, write = parts[tp]
                        write(records, records[-1].offset)
                        parts[tp] = (records[-1].offset + 1, write)  # where a retry goes on from
                        written[0] += len(records)
                if behind:
                    behind = {tp for tp in behind if await consumer.position(tp) < ends[tp]}
                    if not behind:
                        log.info("standby copies caught up", records=written[0],
                                 seconds=round(time.monotonic() - began, 2))
        finally:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await consumer.stop()
