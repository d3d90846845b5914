"""The worker's own producer for what its steps decide: one record batch per partition per step.

A step hands over everything it decided at once (``streams.outbox``), so there is no reason to
pay aiokafka's per-message path (a future, a partitioner call and an accumulator append per
record): the records of each partition go into one ``BatchBuilder`` (aiokafka's C record
builder) and are submitted with ``send_batch``, one future per partition. Measured on the drain
benchmark, this is most of what the step spent in aiokafka.

Partitions are chosen exactly as Kafka's default partitioner does (``streams.partitioning``),
so records keep landing where earlier versions of the worker and any other producer put the
same key; the hash of a key is cached because the same citizen key is hashed for each of its
records.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from streams.partitioning import murmur2

__all__ = ["BatchProducer", "Record"]

# (key, value, headers) of one record.
Record = tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes]]]

# A batch larger than this is split (several batches for one partition, still in order).
BATCH_BYTES = 512 * 1024
# Citizen keys whose partition hash is kept; cleared when full (a cache, not a registry).
HASH_CACHE_KEYS = 200_000
# How long a topic's partition count is trusted: partitions added to a topic are used (and
# keys placed as Kafka's default partitioner would) within this many seconds.
PARTITIONS_REFRESH_S = 60.0


class BatchProducer:
    def __init__(self, bootstrap: str, max_record_bytes: int, client_config: Mapping[str, Any]) -> None:
        # acks=all: a record counts as done once every in-sync replica has it. No linger: a step
        # submits whole batches, and waiting would only add latency.
        self._config = dict(bootstrap_servers=bootstrap, acks="all", linger_ms=0,
                            max_batch_size=min(BATCH_BYTES, max_record_bytes), max_request_size=max_record_bytes,
                            **client_config)
        self._producer: AIOKafkaProducer | None = None
        self._partition_counts: dict[str, tuple[float, int]] = {}
        self._hashes: dict[bytes, int] = {}
        self._round_robin = itertools.count()
        self._started: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Start once, on first use or before (whichever comes first); safe to call again.
        The client is made here, not in ``__init__``: aiokafka binds it to the running loop."""
        if self._started is None:
            self._producer = AIOKafkaProducer(**self._config)
            self._started = asyncio.ensure_future(self._producer.start())
        await asyncio.shield(self._started)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def partition_for(self, topic: str, key: bytes | None) -> int:
        now = time.monotonic()
        known = self._partition_counts.get(topic)
        if known is None or now - known[0] > PARTITIONS_REFRESH_S:
            await self.start()
            known = self._partition_counts[topic] = (now, len(await self._live().partitions_for(topic)))
        count = known[1]
        if key is None:
            return next(self._round_robin) % count
        digest = self._hashes.get(key)
        if digest is None:
            if len(self._hashes) >= HASH_CACHE_KEYS:
                self._hashes.clear()
            digest = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return digest % count

    async def send(self, records: Mapping[tuple[str, int], Sequence[Record]]) -> dict[tuple[str, int], int]:
        """Send every partition's records in order and wait for all; the last offset per partition."""
        await self.start()
        submitted: list[tuple[tuple[str, int], int, asyncio.Future[Any]]] = []
        for (topic, partition), rows in records.items():
            batch, count = self._live().create_batch(), 0
            for key, value, headers in rows:
                # A full batch goes out and a new one takes the record; an empty batch takes any
                # record (KafkaSender.fits keeps them under the producer's limit).
                if batch.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:
                    submitted.append(((topic, partition), count, await self._submit(batch, topic, partition)))
                    batch, count = self._live().create_batch(), 0
                    batch.append(key=key, value=value, timestamp=None, headers=list(headers))
                count += 1
            if count:
                submitted.append(((topic, partition), count, await self._submit(batch, topic, partition)))
        results = await asyncio.gather(*(future for _, _, future in submitted))
        last: dict[tuple[str, int], int] = {}
        for (tp, count, _), metadata in zip(submitted, results, strict=True):
            last[tp] = max(last.get(tp, -1), metadata.offset + count - 1)
        return last

    def _live(self) -> AIOKafkaProducer:
        assert self._producer is not None, "start() first"
        return self._producer

    async def _submit(self, batch: Any, topic: str, partition: int) -> asyncio.Future[Any]:
        batch.close()  # a closed batch is ready at once (no linger) and takes no more records
        future: asyncio.Future[Any] = await self._live().send_batch(batch, topic, partition=partition)
        return future
