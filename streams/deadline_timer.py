"""Fires due deadlines: pops them from the index and sends a ``DeadlineDue`` to the citizen's
own partition, where the citizen step handles it like any event (and remembers that it fired,
so one sent twice acts once). The index is rebuilt from the citizens' row headers after every
rebalance, so a deadline is never lost with a worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from processors.events import DeadlineDue
from processors.model import Deadline, deterministic_id
from schemas.codec import Codec
from streams.citizen_repo import CitizenRepository
from streams.citizen_rows import RowHeader
from streams.clock import Clock
from streams.deadlines import DeadlineIndex
from streams.logs import get_logger
from streams.outbox import KafkaSender, Outbox

__all__ = ["DeadlineTimer"]

log = get_logger("dfdg.worker")


class DeadlineTimer:
    def __init__(self, index: DeadlineIndex, repo: CitizenRepository, codec: Codec, sender: KafkaSender,
                 clock: Clock, producer_name: str, topic: str, owned_partitions: Callable[[], set[int]]) -> None:
        self._index = index
        self._repo = repo
        self._codec = codec
        self._sender = sender
        self._clock = clock
        self._producer_name = producer_name
        self._topic = topic
        self._owned = owned_partitions
        self.ready = False

    def rebuild(self, also: Callable[[str, RowHeader], None] | None = None) -> None:
        """The index from every row header; ``also`` sees each header on the way (one scan of
        the table for everything rebuilt after a rebalance, not one per consumer)."""
        def pending() -> Iterator[tuple[str, int, Iterable[Deadline]]]:
            for key, header in self._repo.headers():
                if also is not None:
                    also(key, header)
                if not header.erased:
                    yield key, header.partition, header.pending

        self._index.rebuild(pending())
        self.ready = True
        log.info("deadline index rebuilt", pending=len(self._index), partitions=sorted(self._owned()))

    def revoked(self) -> None:
        self.ready = False
        self._index.clear()

    async def fire_due(self) -> int:
        if not self.ready:
            return 0
        now = self._clock.now()
        due = self._index.pop_due(now, self._owned())
        with Outbox() as box:
            for entry in due:
                deadline = DeadlineDue(
                    event_id=deterministic_id("deadline-due", entry.citizen_key, entry.deadline_id),
                    occurred_at=now, producer=self._producer_name, deadline_id=entry.deadline_id,
                    rule=entry.rule, due_date=datetime.fromisoformat(entry.due_date).date(), case_id=entry.case_id)
                await self._sender.send(self._topic, entry.citizen_key.encode(), self._codec.encode(deadline),
                                        self._codec.headers_for(deadline), partition=entry.partition)
            await box.acknowledged()
        if due:
            log.info("deadlines due", count=len(due))
        return len(due)
