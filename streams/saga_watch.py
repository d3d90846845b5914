"""The archive sagas this worker holds, kept in memory so it can wake the ones whose backoff is
over and tell operators how many wait and for how long (R7.2).

Rebuilt from the citizens' row headers after every rebalance, for the partitions new to the
worker (the saga is in the clear header, ``streams.citizen_rows``; those it held through the
rebalance keep theirs, ``keep_only``) and updated by ``streams.saga.SagaRunner`` each time it touches a saga.
It may run ahead of the stored row by one batch; that is harmless, because a retry request is
checked against the saga in the row when it arrives (``processors.archive_retry``).

A saga is woken when its backoff is over (``retry_at``), once after a rebuild when it owes a
delivery that was never retried (``due_after_recovery``), and again after the next backoff when a
retry was handled but recorded nothing (an E901 rolled the row back): never every tick, never never.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from processors.archive_retry import (
    DEFAULT_RETRY_POLICY,
    RETRY_BY_TIMER,
    RetryPolicy,
    delivery_backoff,
    due_after_recovery,
    oldest_wait_seconds,
    retry_due,
    waiting_by_step,
)
from processors.deceased import ArchiveSaga
from processors.model import deterministic_id
from schemas.archive_records import ArchiveRetry
from schemas.codec import Codec
from streams.citizen_rows import RowHeader
from streams.logs import get_logger
from streams.outbox import KafkaSender, Outbox

__all__ = ["SagaWatch", "timer_retry_id"]

log = get_logger("dfdg.saga")


@dataclass(frozen=True, slots=True)
class _Held:
    """A citizen the timer has sent a retry for: what woke it, when, and how many retries in a row
    were handled without the saga recording anything."""

    cause: datetime | None
    sent_at: datetime
    stalls: int
    not_before: datetime  # the earliest next wake (a retry lost on the way is sent again then)


class SagaWatch:
    def __init__(self, policy: RetryPolicy = DEFAULT_RETRY_POLICY) -> None:
        self._policy = policy
        self._sagas: dict[str, tuple[int, ArchiveSaga]] = {}
        # Woken and not yet handled, or handled without progress: one request per backoff, not one
        # per tick; dropped once the step records what the retry did (``update``).
        self._held: dict[str, _Held] = {}
        # Found on a rebuild owing a delivery with no retry time (``due_after_recovery``): woken once.
        self._recovered: set[str] = set()

    def __len__(self) -> int:
        return len(self._sagas)

    def rebuild(self, headers: Iterable[tuple[str, RowHeader]]) -> None:
        self.clear()
        for key, h in headers:
            self.restore(key, h.partition, h.saga, h.erased)

    def clear(self) -> None:
        self._sagas.clear()
        self._held.clear()
        self._recovered.clear()

    def keep_only(self, partitions: frozenset[int]) -> None:
        """Let go of the sagas of every partition but these (a rebalance: those kept stay as
        they were; the rows of the others are read again, ``restore``)."""
        self._sagas = {key: held for key, held in self._sagas.items() if held[0] in partitions}
        self._held = {key: held for key, held in self._held.items() if key in self._sagas}
        self._recovered &= self._sagas.keys()

    def restore(self, key: str, partition: int, saga: ArchiveSaga | None, erased: bool) -> None:
        """A saga as its stored row has it, after a rebalance (not a retry handled)."""
        self._held.pop(key, None)
        self._recovered.discard(key)
        self._set(key, partition, saga, erased)
        if saga is not None and key in self._sagas and due_after_recovery(saga):
            self._recovered.add(key)

    def update(self, key: str, partition: int, saga: ArchiveSaga | None, erased: bool) -> None:
        """The step has touched this citizen's saga (after any message of theirs, a retry included)."""
        self._set(key, partition, saga, erased)
        held = self._held.pop(key, None)
        if held is None or key not in self._sagas or saga is None:
            return
        if _owes_delivery(saga) and saga.retry_at == held.cause:
            # Handled, but nothing recorded (an E901 rolled the row back, ...): wake it again after
            # the next backoff, not on the next tick and not never.
            stalls = held.stalls + 1
            self._held[key] = _Held(held.cause, held.sent_at, stalls,
                                    held.sent_at + delivery_backoff(stalls, self._policy))
            log.warning("archive retry handled without progress", citizen=key[:12], package_id=saga.package_id,
                        stalls=stalls)

    def _set(self, key: str, partition: int, saga: ArchiveSaga | None, erased: bool) -> None:
        if saga is None or erased or saga.step == "deleted":
            self._sagas.pop(key, None)
            self._held.pop(key, None)
            self._recovered.discard(key)
        else:
            self._sagas[key] = (partition, saga)

    def waiting(self) -> dict[str, int]:
        """Sagas per waiting step (pending, delivered, rejected), for the gauge and the live page."""
        return waiting_by_step(saga for _, saga in self._sagas.values())

    def oldest_wait_seconds(self, now: datetime) -> float:
        return oldest_wait_seconds((saga for _, saga in self._sagas.values()), now)

    def due(self, now: datetime, owned: set[int]) -> list[tuple[str, int, ArchiveSaga]]:
        """Sagas on owned partitions that the timer should wake now (``wake_due``)."""
        return [(key, partition, saga) for key, (partition, saga) in sorted(self._sagas.items())
                if partition in owned and self._wake_cause(key, saga, now) is not _NOT_DUE]

    def _wake_cause(self, key: str, saga: ArchiveSaga, now: datetime) -> str:
        """What a wake now answers, for the retry's id; ``_NOT_DUE`` when none is due."""
        held = self._held.get(key)
        if held is not None:
            return f"again@{held.not_before.isoformat()}" if _owes_delivery(saga) and now >= held.not_before \
                else _NOT_DUE
        if key in self._recovered and due_after_recovery(saga):
            return "recovered"
        if retry_due(saga, now) and saga.retry_at is not None:
            return f"retry_at@{saga.retry_at.isoformat()}"
        return _NOT_DUE

    async def wake_due(self, now: datetime, owned: Callable[[], set[int]], sender: KafkaSender, codec: Codec,
                       topic: str) -> int:
        """Send an ArchiveRetry to each due saga's partition, where the citizen step delivers again."""
        due = [(key, partition, saga, self._wake_cause(key, saga, now)) for key, partition, saga in
               self.due(now, owned())]
        with Outbox() as box:
            for key, partition, saga, cause in due:
                retry = ArchiveRetry(retry_id=timer_retry_id(saga, cause), package_id=saga.package_id,
                                     citizen_key=key, requested_by=RETRY_BY_TIMER, requested_at=now)
                await sender.send(topic, key.encode(), codec.encode(retry), codec.headers_for(retry),
                                  partition=partition)
            await box.acknowledged()
        for key, _, saga, _ in due:
            held = self._held.get(key)
            self._recovered.discard(key)
            # Not woken again before the step has handled this one, or the cap has passed (lost).
            self._held[key] = _Held(saga.retry_at, now, held.stalls if held else 0, now + self._policy.cap)
        if due:
            log.info("archive deliveries retried", count=len(due))
        return len(due)


_NOT_DUE = ""


def _owes_delivery(saga: ArchiveSaga) -> bool:
    return saga.step == "pending" and bool(saga.areas_to_archive)


def timer_retry_id(saga: ArchiveSaga, cause: str) -> str:
    """The id of the timer's ArchiveRetry: from the package id, ``backoff``, the saga's failed
    deliveries and the cause of the wake (the ``retry_at`` whose wait is over, ``recovered``, or the
    time of a wake again), so a new backoff never repeats an earlier one's id."""
    return deterministic_id("archive-retry", saga.package_id, RETRY_BY_TIMER, str(saga.failed_deliveries), cause)
