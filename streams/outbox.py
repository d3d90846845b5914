"""The worker's one way out to Kafka, and the outbox that lets a step wait for its effects.

A step opens an ``Outbox`` for its batch. Every record sent while it is open (outputs, dead
letters, data-key rows, notify-key rows, saga records, state rows), from whatever module sent
it, is collected through a context variable, so nothing has to thread a collector through the
sinks. ``acknowledged()`` then sends them all, one record batch per partition in the order they
were sent, waits until the broker has every one of them, and raises if any failed: only after
that does the step write the state that records those effects (effects first, state last). The
variable is per asyncio task, so the door and the citizen step, which run in tasks of their
own (each of the step's partitions in its own), never wait on each other's records.

Outside an outbox (timers, tools) a send goes out and is waited for at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from types import TracebackType
from typing import Any, NamedTuple, Protocol

__all__ = ["KafkaSender", "Mark", "Outbox", "OutputTooLarge", "Producer"]

Headers = Sequence[tuple[str, bytes]]
Record = tuple[bytes | None, bytes | None, Headers]


class Producer(Protocol):
    """What the sender needs of a producer (``streams.batch_producer.BatchProducer``)."""

    async def partition_for(self, topic: str, key: bytes | None) -> int: ...

    async def send(self, records: Mapping[tuple[str, int], Sequence[Record]]) -> dict[tuple[str, int], int]: ...


_current: ContextVar[Outbox | None] = ContextVar("dfdg_outbox", default=None)


class OutputTooLarge(ValueError):
    """A record is over the producer's size limit; the step turns its cause into a dead letter."""


class Mark(NamedTuple):
    """Where the outbox stood before one message was handled (``Outbox.mark``)."""

    flushes: int
    lengths: dict[tuple[str, int], int]


class Outbox:
    """The unacknowledged sends of one step. Use as ``with Outbox() as box: ...; await box.acknowledged()``.

    Records sent with ``first=True`` (key rows) go out, and are acknowledged, before the others
    of the same flush: a subscriber never sees a notification whose key is not on its key topic
    yet. A message that fails is rolled back to its ``mark``: none of its outputs is sent, as
    none of its state is kept. Key rows stay (harmless: a key nobody uses, shredded with the
    citizen), because the sealer remembers that it has published them."""

    __slots__ = ("_first", "_flushes", "_offsets", "_pending", "_producer", "_token")

    def __init__(self) -> None:
        self._first: dict[tuple[str, int], list[Record]] = {}
        self._pending: dict[tuple[str, int], list[Record]] = {}
        self._flushes = 0
        self._producer: Producer | None = None
        self._offsets: dict[tuple[str, int], int] = {}
        self._token: Any = None

    def __enter__(self) -> Outbox:
        self._token = _current.set(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        _current.reset(self._token)

    def __len__(self) -> int:
        return sum(map(len, self._first.values())) + sum(map(len, self._pending.values()))

    def add(self, producer: Producer, topic: str, partition: int, record: Record, first: bool = False) -> None:
        self._producer = producer
        (self._first if first else self._pending).setdefault((topic, partition), []).append(record)

    def mark(self) -> Mark:
        return Mark(self._flushes, {tp: len(rows) for tp, rows in self._pending.items()})

    def rollback(self, mark: Mark) -> None:
        """Forget the records collected since ``mark`` (those already acknowledged stay sent)."""
        if mark.flushes != self._flushes:
            self._pending = {}  # everything collected since the last flush came after the mark
            return
        for tp in list(self._pending):
            kept = mark.lengths.get(tp, 0)
            if kept:
                del self._pending[tp][kept:]
            else:
                del self._pending[tp]

    async def acknowledged(self) -> int:
        """Send every collected record and wait for all; raises the first delivery error.
        Returns how many were sent."""
        count = len(self)
        first, pending = self._first, self._pending
        self._first, self._pending = {}, {}
        self._flushes += 1
        for records in (first, pending):
            if records and self._producer is not None:
                for tp, offset in (await self._producer.send(records)).items():
                    self._offsets[tp] = max(offset, self._offsets.get(tp, -1))
        return count

    def last_offsets(self, topic: str) -> dict[int, int]:
        """The last acknowledged offset of each partition of ``topic`` this outbox sent to."""
        return {partition: offset for (name, partition), offset in self._offsets.items() if name == topic}


class KafkaSender:
    """Sends through the worker's producer; collected by the current outbox, else sent and awaited here."""

    def __init__(self, producer: Producer, max_record_bytes: int) -> None:
        self._producer = producer
        self.max_record_bytes = max_record_bytes

    def fits(self, key: bytes | None, value: bytes | None, headers: Headers | None = None) -> bool:
        return record_size(key, value, headers) <= self.max_record_bytes

    async def partition_for(self, topic: str, key: bytes | None) -> int:
        """The partition ``send`` puts ``key`` in when it is not told one."""
        return await self._producer.partition_for(topic, key)

    async def send(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None,
                   partition: int | None = None, first: bool = False) -> None:
        """``first``: a key row, sent before the records that need it (see ``Outbox``)."""
        if not self.fits(key, value, headers):
            raise OutputTooLarge(f"a record for {topic} is {record_size(key, value, headers)} bytes, "
                                 f"over the producer's limit of {self.max_record_bytes}")
        if partition is None:
            partition = await self._producer.partition_for(topic, key)
        record: Record = (key, value, headers or ())
        box = _current.get()
        if box is None:
            await self._producer.send({(topic, partition): [record]})
        else:
            box.add(self._producer, topic, partition, record, first)


def record_size(key: bytes | None, value: bytes | None, headers: Headers | None) -> int:
    """An upper bound of a record's size in a produce request (what the producer's limit counts)."""
    size = 64 + len(key or b"") + len(value or b"")
    for name, data in headers or ():
        size += 8 + len(name) + len(data)
    return size
