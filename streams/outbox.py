"""The worker's one way out to Kafka, and the outbox that lets a step wait for its effects.

A step opens an ``Outbox`` for its batch. Every record sent while it is open (outputs, dead
letters, data-key rows, notify-key rows, saga records), from whatever module sent it, is
tracked through a context variable, so nothing has to thread a collector through the sinks.
``acknowledged()`` then waits until the broker has every one of them, and raises if any failed:
only after that does the step write the state that records those effects (effects first,
state last). The variable is per asyncio task, so the door and the citizen step, which run in
their own agents, never wait on each other's records.

Outside an outbox (timers, tools) a send waits for its own acknowledgement.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from types import TracebackType
from typing import Any

__all__ = ["KafkaSender", "Outbox", "OutputTooLarge", "RawSend"]

Headers = Sequence[tuple[str, bytes]]
# (topic, key, value, partition, headers) -> a future resolved when the broker acknowledges.
RawSend = Callable[[str, bytes | None, bytes | None, int | None, Headers | None], Awaitable[Awaitable[Any]]]

_current: ContextVar[Outbox | None] = ContextVar("dfdg_outbox", default=None)


class OutputTooLarge(ValueError):
    """A record is over the producer's size limit; the step turns its cause into a dead letter."""


class Outbox:
    """The unacknowledged sends of one step. Use as ``with Outbox() as box: ...; await box.acknowledged()``."""

    __slots__ = ("_pending", "_token")

    def __init__(self) -> None:
        self._pending: list[Awaitable[Any]] = []
        self._token: Any = None

    def __enter__(self) -> Outbox:
        self._token = _current.set(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        _current.reset(self._token)

    def __len__(self) -> int:
        return len(self._pending)

    def track(self, delivery: Awaitable[Any]) -> None:
        self._pending.append(delivery)

    async def acknowledged(self) -> int:
        """Wait for every tracked record; raises the first delivery error. Returns how many."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)
        return len(pending)


class KafkaSender:
    """Sends through the worker's producer; tracked by the current outbox, else awaited here."""

    def __init__(self, raw_send: RawSend, max_record_bytes: int) -> None:
        self._raw_send = raw_send
        self.max_record_bytes = max_record_bytes

    def fits(self, key: bytes | None, value: bytes | None, headers: Headers | None = None) -> bool:
        return record_size(key, value, headers) <= self.max_record_bytes

    async def send(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None,
                   partition: int | None = None) -> None:
        if not self.fits(key, value, headers):
            raise OutputTooLarge(f"a record for {topic} is {record_size(key, value, headers)} bytes, "
                                 f"over the producer's limit of {self.max_record_bytes}")
        delivery = await self._raw_send(topic, key, value, partition, list(headers) if headers else None)
        box = _current.get()
        if box is None:
            await delivery
        else:
            box.track(delivery)


def record_size(key: bytes | None, value: bytes | None, headers: Headers | None) -> int:
    """An upper bound of a record's size in a produce request (what the producer's limit counts)."""
    size = 64 + len(key or b"") + len(value or b"")
    for name, data in headers or ():
        size += 8 + len(name) + len(data)
    return size
