"""The citizen step's input, read in batches on aiokafka, on exactly the partitions whose rows
this worker holds.

Faust keeps what it is good at: the citizens table, its changelog, recovery and the group that
decides which worker holds which partition of it. What it no longer does is deliver the step's
messages one by one (an event object, a queue hand-off and two tasks per message, measured in
docs/performance.md). Instead:

    Faust assigns the table's partitions and recovers them
        -> ``assign(partitions)``: this loop reads the citizen-events and archive-receipts
           partitions of the same numbers, from the positions kept with their rows (below)
    per poll: up to ``BATCH_MAX`` messages; each partition's part goes to the step (which sends
    its effects, waits for them, then writes the rows), the parts side by side; once every part
    is done, the offsets are committed, while the next batch is handled (at most one commit
    on its way, awaited before the next)
    Faust is about to hand partitions over
        -> ``revoke()``: the batch in hand finishes and commits, and nothing more is read, before
           Faust lets another worker restore the table

Where to read on from is kept with the rows: the step writes each partition's next offsets as a
row of that partition (``streams.citizen_repo.POSITIONS_KEY``) with the batch's rows, and the
loop seeks there once the partition is recovered, so the rows and the place to read on from
always belong together, whatever any other worker committed meanwhile. The group's offsets are
committed too, for lag and for partitions with no positions row yet. The group has no members
(the partitions are assigned by hand), so its commits carry no generation; the hand-over above
keeps two live workers from reading one partition at once. A new group starts where the app's
group left these topics (``streams.group_offsets``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from streams.consumed import ConsumedMessage
from streams.group_offsets import inherit_offsets
from streams.logs import get_logger
from streams.pending_commit import PendingCommit
from streams.step_policy import BATCH_MAX

__all__ = ["CitizenLoop", "citizen_group"]

log = get_logger("dfdg.worker")

# How long one poll waits for messages before it looks for an assignment change again: the
# longest a hand-over waits on an idle loop.
POLL_MS = 100
# The group has no members, so Kafka expires a partition's committed offset
# ``offsets.retention.minutes`` (7 days by default) after its last commit. An idle loop commits
# its positions again this often, so a quiet partition (archive receipts) keeps its lag
# reported; where to read on from is the positions row, which does not expire.
RECOMMIT_IDLE_S = 3600.0


def citizen_group(app_id: str) -> str:
    """The citizen step's offsets: under the app's prefix, so its ACLs and lag cover it."""
    return f"{app_id}-citizen"


PartitionHandler = Callable[[int, Sequence[ConsumedMessage]], Awaitable[None]]
# The next offset per topic that a partition's restored rows were written after ({}: none yet).
StartAt = Callable[[int], Mapping[str, int]]


class CitizenLoop:
    def __init__(self, bootstrap: str, app_id: str, topics: Sequence[str], handle: PartitionHandler,
                 start_at: StartAt, client_config: Mapping[str, Any]) -> None:
        self._bootstrap = bootstrap
        self._app_id = app_id
        self._group = citizen_group(app_id)
        self._topics = tuple(topics)
        self._handle = handle
        self._start_at = start_at
        self._client_config = dict(client_config)
        self._owned: frozenset[int] = frozenset()
        # The latest assignment asked for, and who waits for it to take effect.
        self._wanted: frozenset[int] | None = None
        self._waiting: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._running = False
        self._committed_at = time.monotonic()
        # The rows hold where to read on from, so a commit only tells lag where the loop is: no
        # batch waits for the one before.
        self._commit = PendingCommit()

    @property
    def owned(self) -> frozenset[int]:
        """The partitions this loop reads now."""
        return self._owned

    async def assign(self, partitions: Iterable[int]) -> None:
        """Read these partitions (their table rows are recovered) from the positions kept with
        their rows, or the group's offsets where a partition has none yet."""
        await self._change(frozenset(partitions))

    async def revoke(self) -> None:
        """Finish and commit the batch in hand, then read nothing until the next ``assign``."""
        await self._change(frozenset())

    async def _change(self, wanted: frozenset[int]) -> None:
        self._wanted = wanted
        self._wake.set()
        if not self._running:
            # Nothing is in hand before the loop runs; it takes up the wish when it starts. (Faust
            # starts the app's tasks only after its first rebalance, so waiting here would hang.)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(done)
        try:
            await done
        except asyncio.CancelledError:
            if self._wanted is wanted:
                self._wanted = None  # the caller gave up before it took effect: do not apply it later
            raise

    async def run(self) -> None:
        await inherit_offsets(self._bootstrap, self._group, self._app_id, self._topics, self._client_config)
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=self._group,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    max_poll_records=BATCH_MAX, **self._client_config)
        await consumer.start()
        self._running = True
        try:
            while True:
                if self._wanted is not None or self._commit.finished:
                    await self._commit.landed()  # before the partitions change hands
                self._apply(consumer)
                if not self._owned:
                    await self._wake.wait()
                    continue
                batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=BATCH_MAX)
                if batch:
                    await self._one_batch(consumer, batch)
                    self._committed_at = time.monotonic()
                elif time.monotonic() - self._committed_at > RECOMMIT_IDLE_S:
                    await self._recommit(consumer)
        finally:
            # The loop ends only on an error or a cancellation (a stop has already revoked its
            # partitions, waiting for the commit): a failed loop exits now, not once the broker
            # answers again.
            self._running = False
            self._commit.abandon()
            self._release()
            await consumer.stop()

    async def _recommit(self, consumer: AIOKafkaConsumer) -> None:
        """Commit where the loop stands; idle, everything before its positions is handled."""
        positions = {tp: OffsetAndMetadata(await consumer.position(tp), "") for tp in consumer.assignment()}
        if positions:
            await consumer.commit(positions)
        self._committed_at = time.monotonic()

    def _apply(self, consumer: AIOKafkaConsumer) -> None:
        """Take up the latest assignment asked for (between batches, never during one)."""
        self._wake.clear()
        if self._wanted is not None:
            wanted, self._wanted = self._wanted, None
            if wanted != self._owned:
                if wanted:
                    consumer.assign([TopicPartition(topic, p) for topic in self._topics for p in sorted(wanted)])
                    for partition in sorted(wanted):
                        self._seek_to_rows(consumer, partition)
                else:
                    consumer.unsubscribe()  # assign([]) would ask for every topic's metadata
                self._owned = wanted
                log.info("citizen partitions read", partitions=sorted(wanted))
        self._release()

    def _seek_to_rows(self, consumer: AIOKafkaConsumer, partition: int) -> None:
        """Read on from where the partition's restored rows were written, not from the group's
        commit: a commit can be ahead of the rows (a worker that wrote them after this one
        restored the table) or behind them (a crash between the rows and the commit)."""
        for topic, offset in self._start_at(partition).items():
            if topic in self._topics:
                consumer.seek(TopicPartition(topic, partition), offset)

    def _release(self) -> None:
        waiting, self._waiting = self._waiting, []
        for done in waiting:
            if not done.done():
                done.set_result(None)

    async def _one_batch(self, consumer: AIOKafkaConsumer, batch: Mapping[TopicPartition, Sequence[Any]]) -> None:
        by_partition: dict[int, list[ConsumedMessage]] = {}
        for tp, records in batch.items():
            if tp.partition in self._owned:
                by_partition.setdefault(tp.partition, []).extend(ConsumedMessage.of(r) for r in records)
        # The partitions' parts run side by side: each holds its own citizens, rows and outbox,
        # so one can decide while another waits for the broker's acknowledgements.
        await asyncio.gather(*(self._handle(partition, messages) for partition, messages in by_partition.items()))
        await self._commit.landed()
        offsets = {tp: OffsetAndMetadata(records[-1].offset + 1, "")
                   for tp, records in batch.items() if records and tp.partition in self._owned}
        self._commit.send(consumer.commit(offsets))
