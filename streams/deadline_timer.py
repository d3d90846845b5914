"""Fires due deadlines: pops them from the index and sends a ``DeadlineDue`` to the citizen's
own partition, where the citizen step handles it like any event (and remembers that it fired,
so one sent twice acts once). The index is rebuilt from the citizens' row headers after every
rebalance, so a deadline is never lost with a worker.

A rebalance rebuilds only what is new: the partitions this worker held through it, with no
other owner in between, keep their entries (the step kept them exact); the rows of the others
are read. Held through it means: in the assignment of the group generation just before, with
the index complete for it then (``assigned``). A generation missed, no assignment heard, a
window move cut short or a new process reads every row; a rebuild cut short keeps what it had
kept (the steps have not run since) and reads the rest next time.

The index holds the deadlines due within ``DEADLINE_WINDOW_S``; when the clock has used up
``DEADLINE_WINDOW_MOVE_AT`` of it, the timer reads the headers again, a few thousand rows at a
time between the step's batches, and the window moves on (streams.deadlines).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from processors.events import DeadlineDue
from processors.model import Deadline, deterministic_id
from schemas.codec import Codec
from streams.citizen_repo import CitizenRepository
from streams.citizen_rows import RowHeader
from streams.clock import Clock
from streams.deadlines import DeadlineIndex, held_through
from streams.logs import get_logger
from streams.outbox import KafkaSender, Outbox
from streams.step_policy import DEADLINE_WINDOW_MOVE_AT, DEADLINE_WINDOW_S

__all__ = ["MOVE_ROWS_PER_TURN", "DeadlineTimer"]

# Rows read per turn of the event loop while the window moves: a turn takes a few milliseconds,
# so the step's batches and the consumers' heartbeats go on during a long scan.
MOVE_ROWS_PER_TURN = 2_000

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
        # Counts rebalances: a window move that sees it change stops (the rows may be gone).
        self._generation = 0
        self._moving: asyncio.Task[None] | None = None
        # The partitions whose deadlines the index holds exactly (and the group generation of
        # the assignment that last confirmed it, None before the first).
        self._complete: frozenset[int] = frozenset()
        self._group_generation: int | None = None
        # Whether an assignment has been heard since the last rebuild: one that kept partitions
        # without hearing it could keep one another worker held meanwhile.
        self._heard = False
        # What each complete partition's store said it held when the steps first stopped after
        # the last rebuild (``revoked``): a store that has taken in rows since (a restore from the
        # changelog) is read again, whoever wrote them.
        self._marks: dict[int, object] | None = None

    def assigned(self, partitions: set[int], group_generation: int) -> None:
        """The group's assignment for ``group_generation``. A partition the index is complete
        for stays so only if this worker holds it again in the very next generation: no other
        worker can have written its rows in between."""
        follows = self._group_generation is not None and group_generation == self._group_generation + 1
        self._complete = self._complete & frozenset(partitions) if follows else frozenset()
        self._group_generation = group_generation
        self._heard = True

    def rebuild(self, also: Callable[[str, RowHeader], None] | None = None) -> None:
        """The index from every row header, in one go; ``also`` sees the header of each row with a
        saga or the erasure marker on the way (one scan of the table for everything rebuilt
        after a rebalance, not one per consumer; the other rows have nothing else to rebuild)."""
        owned = frozenset(self._owned())
        scan = _Scan(self._clock.now().timestamp() + DEADLINE_WINDOW_S, owned)
        self._generation += 1
        for _ in scan.read(self._repo, also):
            pass
        self._finish(scan, owned, frozenset())

    async def rebuild_in_turns(self, also: Callable[[str, RowHeader], None] | None = None,
                               current: Callable[[], bool] = lambda: True,
                               kept: Callable[[frozenset[int]], None] | None = None,
                               marks: Callable[[int], object] | None = None) -> bool:
        """``rebuild``, reading ``MOVE_ROWS_PER_TURN`` headers per turn of the event loop: a
        million rows take seconds, and the consumers' heartbeats, the door and the operator
        pages go on meanwhile. Only while the steps are stopped (after a rebalance, before the
        citizen loop is given its partitions): a row they wrote meanwhile would be missed. False,
        and the index left not ready, when another rebalance began meanwhile (its own rebuild
        follows). ``current`` says whether the rebalance this rebuild is for is still the latest:
        checked before every turn's rows, so the scan never goes on over stores a newer rebalance
        has begun to hand over (Faust drops their partitions from under the iterator).

        Only the rows of partitions the index is not complete for are read (``assigned``);
        ``kept`` hears which partitions are kept as they were, before the scan (what else the
        worker holds per partition keeps them too, and lets go of the rest), and ``also`` sees
        only rows of the others. ``marks``: what a partition's store says it holds (its
        changelog offset); one that differs from its mark at ``revoked`` is read again."""
        if not current():
            return False
        self.ready = False  # nothing fires from the index being replaced
        self._generation += 1
        generation = self._generation
        owned = frozenset(self._owned())
        keep = self._complete & owned if self._heard and not self._index.moving else frozenset()
        if marks is not None:
            before = self._marks or {}
            keep = frozenset(p for p in keep if p in before and before[p] == marks(p))
        self._heard = False
        if keep:
            self._index.keep_only(keep)
            scan = _Scan(self._index.horizon, owned - keep)
        else:
            self._index.clear()
            scan = _Scan(self._clock.now().timestamp() + DEADLINE_WINDOW_S, owned)
        self._complete = keep
        if kept is not None:
            kept(keep)
        for _ in scan.read(self._repo, also):
            await asyncio.sleep(0)
            if generation != self._generation or not current():
                log.info("deadline index rebuild stopped by a rebalance")
                return False
        self._finish(scan, owned, keep)
        return True

    def _finish(self, scan: _Scan, owned: frozenset[int], kept: frozenset[int]) -> None:
        if kept:
            self._index.add(scan.held, beyond=scan.left_out)
        else:
            self._index.rebuild(scan.held, scan.horizon, beyond=scan.left_out)
        self._complete = owned
        self._marks = None
        self.ready = True
        log.info("deadline index rebuilt", pending=len(self._index), beyond_window=self._index.beyond,
                 partitions=sorted(owned), kept=sorted(kept), rows=scan.rows,
                 seconds=round(time.monotonic() - scan.began, 3))

    def revoked(self, marks: Callable[[int], object] | None = None) -> None:
        """The steps have stopped: nothing fires until the rebuild after the rebalance. The
        entries stay (that rebuild keeps those of the partitions held through it). ``marks``:
        what each partition's store says it holds, taken at the first stop after a rebuild."""
        self.ready = False
        self._generation += 1
        if marks is not None and self._marks is None:
            self._marks = {p: marks(p) for p in self._complete}

    async def fire_due(self) -> int:
        if not self.ready:
            return 0
        now = self._clock.now()
        if (self._moving is None and
                now.timestamp() + DEADLINE_WINDOW_S * (1 - DEADLINE_WINDOW_MOVE_AT) >= self._index.horizon):
            # In the background: what is due before the old horizon is all held already, so
            # firing goes on while the rows are read (a midnight burst does not wait for it).
            self._moving = asyncio.create_task(self.move_window(now, self._generation))
            self._moving.add_done_callback(self._moved)
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

    def _moved(self, task: asyncio.Task[None]) -> None:
        self._moving = None
        if not task.cancelled() and (exc := task.exception()) is not None:
            # The horizon was raised before the rows were read: without them the index would
            # miss deadlines between the old horizon and the new. Read everything again.
            log.error("deadline window move failed; rebuilding the index", error=type(exc).__name__)
            if self.ready:
                self.rebuild()

    async def move_window(self, now: datetime, generation: int | None = None) -> None:
        """Hold the deadlines due before ``now`` + ``DEADLINE_WINDOW_S``: every row's header is
        read again, ``MOVE_ROWS_PER_TURN`` at a time; a rebalance meanwhile stops the move (the
        rebuild after it reads every row). ``generation``: the rebalance count the move was
        decided in; a rebalance since (the task had not begun) means no move at all."""
        started = time.monotonic()
        if generation is None:
            generation = self._generation
        elif generation != self._generation:
            return
        self._index.begin_move(now.timestamp() + DEADLINE_WINDOW_S)
        # The keys as of now; a row written later goes through the step, which indexes it
        # against the new horizon (and the index then skips it here).
        keys = self._repo.citizen_keys()
        for n, key in enumerate(keys, start=1):
            header = self._repo.header(key)
            if header is not None and not header.erased:
                self._index.moved_row(key.decode(), header.partition, header.pending)
            if n % MOVE_ROWS_PER_TURN == 0:
                await asyncio.sleep(0)
                if generation != self._generation:
                    # The horizon is raised and not every row read: the index stays ``moving``,
                    # so the rebuild after the rebalance keeps nothing and reads every row.
                    log.info("deadline window move stopped by a rebalance")
                    return
        self._index.end_move()
        log.info("deadline window moved", rows=len(keys), pending=len(self._index),
                 beyond_window=self._index.beyond, seconds=round(time.monotonic() - started, 3))


class _Scan:
    """One read of the row headers of some partitions for a rebuild: the rows with deadlines
    due within the window (a few percent of them), and how many deadlines the others leave out
    per partition."""

    def __init__(self, horizon: float, partitions: frozenset[int]) -> None:
        self.horizon = horizon
        self.partitions = partitions
        self.held: list[tuple[str, int, tuple[Deadline, ...], int]] = []
        self.left_out: dict[int, int] = {}
        self.rows = 0
        self.began = time.monotonic()

    def read(self, repo: CitizenRepository, also: Callable[[str, RowHeader], None] | None) -> Iterator[None]:
        """Reads the rows, yielding after every ``MOVE_ROWS_PER_TURN``."""
        if not self.partitions:
            return
        held, left_out_in = self.held, self.left_out
        for key, partition, pending, left_out, header in repo.window_rows(held_through(self.horizon),
                                                                          self.partitions):
            self.rows += 1
            if header is not None and also is not None:
                also(key.decode(), header)  # the saga and the marker; ``held`` keeps the window only
            if header is not None and header.erased:
                pass  # deleted: nothing pending
            elif pending:
                held.append((key.decode(), partition, pending, left_out))
            elif left_out:
                left_out_in[partition] = left_out_in.get(partition, 0) + left_out
            if self.rows % MOVE_ROWS_PER_TURN == 0:
                yield None
