"""The in-memory index of pending deadlines by due time, for the partitions this worker owns.

The durable truth is each citizen's row (``streams.citizen_rows``: its clear header lists the
pending deadlines); this index is rebuilt from those headers after every rebalance (the rows
of partitions new to the worker; those it held through the rebalance keep their entries,
``keep_only``), so a restart, a crash or a move to another worker loses nothing. Popping the next due deadline is
a heap pop, O(log n).

Only a window is held: deadlines that fire before ``horizon`` (a couple of days ahead of the
clock, ``DEADLINE_WINDOW_S``). The rest stay in the rows' headers on disk, so memory follows the
deadlines due soon, not every pending one. The timer moves the window forward by scanning the
headers again (``begin_move``, ``moved_row``, ``end_move``) while the step goes on; a citizen
the step rewrites after the move began has been indexed against the new horizon by the step,
and the scan leaves it alone.

Firing does not change state here: the timer sends a ``DeadlineDue`` to the citizen's own
partition, and the citizen step handles it like any event. The processor remembers what has
fired, so a deadline sent twice (a crash after sending, a rebalance) acts once.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from sys import intern

from processors.clock import passed_at
from processors.model import Deadline

__all__ = ["DeadlineIndex", "DueDeadline", "entries_for", "held_through"]


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which made these
# entries (several per touched citizen, every batch) cost 4.5x as much to build. Nothing
# changes an entry once made.
@dataclass(slots=True)
class DueDeadline:
    fires_at: float  # epoch seconds
    citizen_key: str
    deadline_id: str
    rule: str
    due_date: str
    case_id: str
    partition: int

    def __lt__(self, other: DueDeadline) -> bool:
        # The heap's order: due time, then citizen and id (unique together, so nothing later
        # decides). Written out because the generated one builds two 7-tuples per comparison.
        if self.fires_at != other.fires_at:
            return self.fires_at < other.fires_at
        return (self.citizen_key, self.deadline_id) < (other.citizen_key, other.deadline_id)


def held_through(horizon: float) -> str:
    """An ISO date on or after the last due date whose deadline fires before ``horizon``, so a
    deadline due later can be counted beyond the window without being made. A date passes at
    local midnight after it, never before 22:00 UTC on the date itself: the horizon's own UTC
    date is enough, and a day more leaves the exact cut to ``DeadlineIndex._held``."""
    try:
        return (datetime.fromtimestamp(horizon, UTC).date() + timedelta(days=1)).isoformat()
    except (OverflowError, ValueError):  # an endless window (inf) or one past year 9999
        return "9999-12-31"


@lru_cache(maxsize=4096)
def _fires_at(due: date) -> float:
    # A case's nine deadlines share three dates, and a day's cases share them all.
    return passed_at(due).timestamp()


def entries_for(citizen_key: str, partition: int, pending: Iterable[Deadline]) -> list[DueDeadline]:
    return [DueDeadline(_fires_at(d.due_date), citizen_key, d.deadline_id, intern(d.rule),
                        intern(d.due_iso), d.case_id, partition) for d in pending]


class DeadlineIndex:
    """A heap of pending deadlines. Cancelled entries are dropped lazily: ``live`` remembers
    which ids are still pending per citizen, so a cancel costs O(1) and a pop skips the dead."""

    def __init__(self) -> None:
        self._heap: list[DueDeadline] = []
        # Per citizen, the ids still pending: a tuple, as a citizen has a handful at most and a
        # small frozenset costs four times the memory (1M citizens: ~170 MB).
        self._live: dict[str, tuple[str, ...]] = {}
        # Sent as DeadlineDue but not yet handled by the citizen step: not to be pushed again
        # when another event for the same citizen rewrites its row meanwhile.
        self._inflight: dict[str, set[str]] = {}
        # The partition of each citizen in ``_inflight`` (its entries have left the heap), so
        # that ``keep_only`` can let go of a partition's in-flight deadlines too.
        self._inflight_in: dict[str, int] = {}
        # Deadlines firing at or after this instant (epoch seconds) are left in the rows.
        self.horizon = math.inf
        # Pending deadlines past the horizon per partition, kept exact: counted at the rebuild,
        # then changed by each row the step rewrites (against what it replaces) and by each
        # window move.
        self._beyond: dict[int, int] = {}
        # While the window moves: the horizon before it, and the citizens the step has rewritten
        # since it began, each with how many of its replaced row's deadlines fell between the
        # two horizons (the scan, skipping the citizen, takes those out of ``beyond``).
        self._moving: dict[str, int] | None = None
        self._moved_from = math.inf

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._live.values())

    @property
    def beyond(self) -> int:
        """Pending deadlines left in the rows, past the window."""
        return sum(self._beyond.values())

    def _count_beyond(self, partition: int, change: int) -> None:
        if change:
            self._beyond[partition] = self._beyond.get(partition, 0) + change

    def clear(self) -> None:
        self._heap.clear()
        self._live.clear()
        self._inflight.clear()
        self._inflight_in.clear()
        self._moving = None
        self._beyond.clear()

    def keep_only(self, partitions: frozenset[int]) -> None:
        """Let go of every partition but these: their entries, in-flight deadlines and counts.
        What is kept stays exactly as it was (a rebuild after a rebalance then reads only the
        rows of the partitions new to this worker, ``add``)."""
        if self._moving is not None:
            raise RuntimeError("the window is moving: rebuild the index instead")
        gone = {e.citizen_key for e in self._heap if e.partition not in partitions}
        gone.update(key for key, partition in self._inflight_in.items() if partition not in partitions)
        self._heap = [e for e in self._heap if e.partition in partitions]
        heapq.heapify(self._heap)
        for key in gone:
            self._live.pop(key, None)
            self._inflight.pop(key, None)
            self._inflight_in.pop(key, None)
        self._beyond = {p: n for p, n in self._beyond.items() if p in partitions}

    def _held(self, pending: Iterable[Deadline]) -> tuple[Deadline, ...]:
        horizon = self.horizon
        return tuple(d for d in pending if _fires_at(d.due_date) < horizon)

    @staticmethod
    def _between(pending: Iterable[Deadline], start: float, end: float) -> int:
        return sum(1 for d in pending if start <= _fires_at(d.due_date) < end)

    def replace_pending(self, citizen_key: str, partition: int, pending: Iterable[Deadline],
                        before: Iterable[Deadline] = ()) -> None:
        """``replace_citizen`` from the citizen's pending deadlines, making entries only for the
        new ones (a citizen's row is rewritten on every event; most of its deadlines are known).
        ``before``: the pending deadlines of the row this one replaces (for ``beyond``)."""
        pending, before = tuple(pending), tuple(before)
        held = self._held(pending)
        if self._moving is not None and citizen_key not in self._moving:
            self._moving[citizen_key] = self._between(before, self._moved_from, self.horizon)
        self._count_beyond(partition, (len(pending) - len(held)) - self._between(before, self.horizon, math.inf))
        self._replace_pending(citizen_key, partition, held)

    def _replace_pending(self, citizen_key: str, partition: int, pending: tuple[Deadline, ...]) -> None:
        known = self._live.get(citizen_key, ())
        inflight = self._inflight.get(citizen_key, set())
        if not inflight and len(known) == len(pending) and all(d.deadline_id in known for d in pending):
            return  # the same set: nothing to push, nothing to cancel
        fresh = [d for d in pending if d.deadline_id not in known and d.deadline_id not in inflight]
        self._replace(citizen_key, tuple(d.deadline_id for d in pending), entries_for(citizen_key, partition, fresh))

    def replace_citizen(self, citizen_key: str, entries: Iterable[DueDeadline]) -> None:
        """Make ``entries`` the citizen's pending set (new ones pushed, missing ones cancelled)."""
        entries = [e for e in entries if e.fires_at < self.horizon]
        known = self._live.get(citizen_key, ())
        inflight = self._inflight.get(citizen_key, set())
        self._replace(citizen_key, tuple(e.deadline_id for e in entries),
                      [e for e in entries if e.deadline_id not in known and e.deadline_id not in inflight])

    def _replace(self, citizen_key: str, ids: tuple[str, ...], new_entries: list[DueDeadline]) -> None:
        for entry in new_entries:
            heapq.heappush(self._heap, entry)
        inflight = self._inflight.get(citizen_key)
        if inflight:
            inflight &= set(ids)
            if not inflight:
                del self._inflight[citizen_key]
                self._inflight_in.pop(citizen_key, None)
        if ids:
            self._live[citizen_key] = ids
        else:
            self._live.pop(citizen_key, None)

    def rebuild(self, citizens: Iterable[tuple[str, int, Iterable[Deadline], int]],
                horizon: float = math.inf, beyond: Mapping[int, int] | None = None) -> None:
        """Everything from (citizen key, partition, pending deadlines, how many more are left
        out as due after ``held_through(horizon)``), e.g. the citizens' row headers, that fires
        before ``horizon``; the rest is counted as beyond the window, with ``beyond`` more per
        partition (left out of rows not passed here at all)."""
        self.clear()
        self.horizon = horizon
        self.add(citizens, beyond)

    def add(self, citizens: Iterable[tuple[str, int, Iterable[Deadline], int]],
            beyond: Mapping[int, int] | None = None) -> None:
        """``rebuild`` for more partitions, against the horizon the index has: the rows of
        partitions it holds nothing of (``keep_only`` let go of everything else)."""
        entries: list[DueDeadline] = []
        for partition, count in (beyond or {}).items():
            self._count_beyond(partition, count)
        for key, partition, pending, left_out in citizens:
            pending = tuple(pending)
            held = self._held(pending)
            self._count_beyond(partition, left_out + len(pending) - len(held))
            citizen = entries_for(key, partition, held)
            entries.extend(citizen)
            if citizen:
                self._live[key] = tuple(e.deadline_id for e in citizen)
        if self._heap:
            self._heap.extend(entries)
            heapq.heapify(self._heap)
        else:
            heapq.heapify(entries)
            self._heap = entries

    def begin_move(self, horizon: float) -> None:
        """The window now ends at ``horizon``; the rows are read again with ``moved_row``."""
        self._moved_from = self.horizon
        self.horizon = max(self.horizon, horizon)  # never narrower: what is held stays held
        self._moving = {}

    def moved_row(self, citizen_key: str, partition: int, pending: Iterable[Deadline]) -> None:
        """One row read while the window moves. A row the step rewrote since the move began is
        skipped: the step has indexed it against the new horizon already (``replace_pending``
        records it), and the scan may hold an older copy of the row."""
        if self._moving is None:
            return
        if citizen_key in self._moving:
            self._count_beyond(partition, -self._moving.pop(citizen_key))  # counted once: a row is read once
            self._moving[citizen_key] = 0
            return
        pending = tuple(pending)
        self._count_beyond(partition, -self._between(pending, self._moved_from, self.horizon))
        self._replace_pending(citizen_key, partition, self._held(pending))

    def end_move(self) -> None:
        self._moving = None

    @property
    def moving(self) -> bool:
        return self._moving is not None

    def pop_due(self, now: datetime, owned_partitions: set[int], limit: int = 10_000) -> list[DueDeadline]:
        """Remove and return deadlines due at ``now`` on partitions this worker actively owns."""
        cutoff = now.timestamp()
        due: list[DueDeadline] = []
        skipped: list[DueDeadline] = []
        while self._heap and self._heap[0].fires_at <= cutoff and len(due) < limit:
            entry = heapq.heappop(self._heap)
            live = self._live.get(entry.citizen_key)
            if live is None or entry.deadline_id not in live:
                continue  # cancelled or already fired
            if entry.partition not in owned_partitions:
                skipped.append(entry)  # owned elsewhere now; the rebuild after rebalance drops it
                continue
            remaining = tuple(i for i in live if i != entry.deadline_id)
            if remaining:
                self._live[entry.citizen_key] = remaining
            else:
                del self._live[entry.citizen_key]
            self._inflight.setdefault(entry.citizen_key, set()).add(entry.deadline_id)
            self._inflight_in[entry.citizen_key] = entry.partition
            due.append(entry)
        for entry in skipped:
            heapq.heappush(self._heap, entry)
        return due

    def oldest_overdue_seconds(self, now: datetime) -> float:
        while self._heap:
            head = self._heap[0]
            live = self._live.get(head.citizen_key)
            if live is not None and head.deadline_id in live:
                return max(0.0, now.timestamp() - head.fires_at)
            heapq.heappop(self._heap)
        return 0.0
