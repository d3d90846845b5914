"""The archive sagas this worker holds, kept in memory so it can wake the ones whose backoff is
over and tell operators how many wait and for how long (R7.2).

Rebuilt from the citizens' row headers after every rebalance (the saga is in the clear header,
``streams.citizen_rows``) and updated by ``streams.saga.SagaRunner`` each time it touches a saga.
It may run ahead of the stored row by one batch; that is harmless, because a retry request is
checked against the saga in the row when it arrives (``processors.archive_retry``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from processors.archive_retry import RETRY_BY_TIMER, oldest_wait_seconds, retry_due, waiting_by_step
from processors.deceased import ArchiveSaga
from processors.model import deterministic_id
from schemas.archive_records import ArchiveRetry
from schemas.codec import Codec
from streams.citizen_rows import RowHeader
from streams.logs import get_logger
from streams.outbox import KafkaSender, Outbox

__all__ = ["SagaWatch"]

log = get_logger("dfdg.saga")


class SagaWatch:
    def __init__(self) -> None:
        self._sagas: dict[str, tuple[int, ArchiveSaga]] = {}
        # The retry_at each citizen was last woken for: one request per backoff, not one per tick.
        self._woken: dict[str, datetime] = {}

    def __len__(self) -> int:
        return len(self._sagas)

    def rebuild(self, headers: Iterable[tuple[str, RowHeader]]) -> None:
        self._sagas = {key: (h.partition, h.saga) for key, h in headers if h.saga is not None and not h.erased}
        self._woken.clear()

    def clear(self) -> None:
        self._sagas.clear()
        self._woken.clear()

    def update(self, key: str, partition: int, saga: ArchiveSaga | None, erased: bool) -> None:
        if saga is None or erased or saga.step == "deleted":
            self._sagas.pop(key, None)
            self._woken.pop(key, None)
        else:
            self._sagas[key] = (partition, saga)

    def waiting(self) -> dict[str, int]:
        """Sagas per waiting step (pending, delivered, rejected), for the gauge and the live page."""
        return waiting_by_step(saga for _, saga in self._sagas.values())

    def oldest_wait_seconds(self, now: datetime) -> float:
        return oldest_wait_seconds((saga for _, saga in self._sagas.values()), now)

    def due(self, now: datetime, owned: set[int]) -> list[tuple[str, int, ArchiveSaga]]:
        """Sagas on owned partitions whose failed delivery's backoff is over and not yet woken."""
        return [(key, partition, saga) for key, (partition, saga) in sorted(self._sagas.items())
                if partition in owned and retry_due(saga, now) and self._woken.get(key) != saga.retry_at]

    async def wake_due(self, now: datetime, owned: Callable[[], set[int]], sender: KafkaSender, codec: Codec,
                       topic: str) -> int:
        """Send an ArchiveRetry to each due saga's partition, where the citizen step delivers again."""
        due = self.due(now, owned())
        with Outbox() as box:
            for key, partition, saga in due:
                retry = ArchiveRetry(
                    retry_id=deterministic_id("archive-retry", saga.package_id, RETRY_BY_TIMER,
                                              str(saga.failed_deliveries)),
                    package_id=saga.package_id, citizen_key=key, requested_by=RETRY_BY_TIMER, requested_at=now)
                await sender.send(topic, key.encode(), codec.encode(retry), codec.headers_for(retry),
                                  partition=partition)
            await box.acknowledged()
        for key, _, saga in due:
            if saga.retry_at is not None:
                self._woken[key] = saga.retry_at
        if due:
            log.info("archive deliveries retried", count=len(due))
        return len(due)
