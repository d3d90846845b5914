"""The door's own consumer: the ingress topics read in batches on aiokafka, inside the Faust app.

The door keeps no state, so its input needs none of Faust's tables, co-partitioning or
recovery; what Faust would add is its per-message machinery (an event object, a queue hand-off
and two tasks per message), which measured as much CPU as the door's own work
(docs/performance.md). So the door reads through a plain consumer group of its own,
``<app_id>-door``:

    1. poll     up to ``BATCH_MAX`` messages from every assigned ingress partition
    2. handle   the door admits, seals and passes them on, and waits for every acknowledgement
    3. commit   the offsets past the batch, while the next batch is handled

A crash anywhere before 3 has landed replays the batch (the citizen step drops the
duplicates); the loop never commits a message it has not finished. A commit is awaited before
the next one is sent, so at most one is in flight and they land in order; its round trip is
spent on the next batch rather than waited out (``streams.pending_commit``). A rebalance, and
a stop, wait until the batch in hand is handled and its commit has landed, so the next owner
starts where this one stopped.

The group uses static membership like the app's own (``group_instance_id``), so a restarted
worker takes its ingress partitions straight back; a new door group starts where the app's
group left the ingress topics (``streams.group_offsets``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import OffsetAndMetadata

from streams.consumed import ConsumedMessage
from streams.group_offsets import inherit_offsets
from streams.logs import get_logger
from streams.pending_commit import PendingCommit
from streams.step_policy import (
    BATCH_MAX,
    HANDOVER_WAIT_S,
    HEARTBEAT_INTERVAL_S,
    REBALANCE_TIMEOUT_S,
    SESSION_TIMEOUT_S,
)

__all__ = ["IngressLoop", "door_group"]

log = get_logger("dfdg.worker")


def door_group(app_id: str) -> str:
    """The door's consumer group: under the app's prefix, so its ACLs and lag cover it."""
    return f"{app_id}-door"


Handler = Callable[[Sequence[ConsumedMessage]], Awaitable[None]]
# Told True when the group has given the loop its partitions, False when it takes them back.
Assignment = Callable[[bool], None]


class IngressLoop:
    def __init__(self, bootstrap: str, app_id: str, instance_id: str, topics: Sequence[str], handle: Handler,
                 client_config: Mapping[str, Any], on_assignment: Assignment | None = None) -> None:
        self._bootstrap = bootstrap
        self._app_id = app_id
        self._group = door_group(app_id)
        self._instance_id = f"{instance_id}-door"
        self._topics = tuple(topics)
        self._handle = handle
        self._client_config = dict(client_config)
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self._on_assignment = on_assignment
        self._commit = PendingCommit()

    async def run(self) -> None:
        await inherit_offsets(self._bootstrap, self._group, self._app_id, self._topics, self._client_config)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=self._group, group_instance_id=self._instance_id,
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=BATCH_MAX,
            session_timeout_ms=int(SESSION_TIMEOUT_S * 1000), heartbeat_interval_ms=int(HEARTBEAT_INTERVAL_S * 1000),
            # Long enough for the batch in hand to finish before this member rejoins (the
            # listener waits up to HANDOVER_WAIT_S); aiokafka's default is the session timeout.
            rebalance_timeout_ms=int(REBALANCE_TIMEOUT_S * 1000), **self._client_config)
        consumer.subscribe(self._topics, listener=_FinishBatchFirst(self.settled, self._on_assignment))
        await consumer.start()
        try:
            while not self._stopping:
                batch = await consumer.getmany(timeout_ms=1000, max_records=BATCH_MAX)
                if batch and not self._stopping:  # a batch read while stopping is left for the next start
                    await self._one_batch(consumer, batch)
                elif self._commit.finished:
                    await self._commit.landed()  # an idle loop learns of a failed commit too
            await self._commit.settled()
        except BaseException:
            self._commit.abandon()  # a loop that failed exits now (streams.bootstrap.loop_or_exit)
            raise
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        """Finish and commit the batch in hand, then read nothing more (the worker is stopping)."""
        self._stopping = True
        await self.settled()

    async def _one_batch(self, consumer: AIOKafkaConsumer, batch: Mapping[TopicPartition, Sequence[Any]]) -> None:
        self._idle.clear()
        try:
            await self._handle([ConsumedMessage.of(record) for records in batch.values() for record in records])
            offsets = {tp: OffsetAndMetadata(records[-1].offset + 1, "") for tp, records in batch.items() if records}
            await self._commit.landed()
            self._commit.send(_commit(consumer, offsets))
            if self._stopping:
                await self._commit.landed()
        finally:
            self._idle.set()

    async def settled(self) -> None:
        """Once no batch is in hand and the last batch's commit has landed (or failed: the loop
        itself stops on that)."""
        await self._idle.wait()
        await self._commit.settled()


async def _commit(consumer: AIOKafkaConsumer, offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> None:
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, IllegalStateError) as exc:
        # The partitions moved on while the batch was handled: their next owner replays it from
        # the last commit, and the citizen step drops what it has seen.
        log.warning("door commit refused after a rebalance; the batch will be replayed",
                    error=type(exc).__name__, partitions=len(offsets))


class _FinishBatchFirst(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands partitions over only once the batch in hand is committed."""

    def __init__(self, settled: Callable[[], Awaitable[None]], on_assignment: Assignment | None) -> None:
        self._settled = settled
        self._on_assignment = on_assignment

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if self._on_assignment is not None:
            self._on_assignment(False)
        try:
            await asyncio.wait_for(self._settled(), HANDOVER_WAIT_S)
        except TimeoutError:
            # Its commit will be refused (the partitions have moved on): the next owner replays
            # the batch, and the door keeps no state, so this costs duplicates only.
            log.warning("door batch still running at a rebalance; its partitions' next owner replays it")

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("door partitions assigned", partitions=len(assigned))
        if self._on_assignment is not None:
            self._on_assignment(True)
