"""After a rebalance the deadline index reads only the rows of partitions new to the worker: the
partitions it held through the rebalance (in the group generation just before, with the index
complete for them) keep their entries as the step left them. Every other case reads the rows
again, so no deadline is lost and none fires from a row another worker has since rewritten
(R3.1, issue 12's failover)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from datetime import UTC, date, datetime

from processors.model import Deadline
from streams.citizen_repo import CitizenRepository, WindowRow
from streams.citizen_rows import RowHeader, encode_row
from streams.clock import ManualClock
from streams.deadline_timer import MOVE_ROWS_PER_TURN, DeadlineTimer
from streams.deadlines import DeadlineIndex

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
DUE = datetime(2026, 3, 3, tzinfo=UTC)  # R3.1's tomorrow has passed; next year's has not
PARTITIONS = 4
ROWS = 400


def _row(i: int, soon: bool = True) -> bytes:
    pending = [Deadline("R5.1", date(2027, 3, 2), f"case-{i}")]  # beyond the window
    if soon:
        pending.append(Deadline("R3.1", date(2026, 3, 2), f"case-{i}"))
    return encode_row(RowHeader(i % PARTITIONS, tuple(pending)), b"\xd5\x01sealed")


def _table(rows: int = ROWS) -> dict[bytes, bytes]:
    return {f"c-{i:05d}".encode(): _row(i) for i in range(rows)}


class _Repo(CitizenRepository):
    """The table's rows, with the keys of the rows a rebuild reads written down."""

    def __init__(self, table: dict[bytes, bytes]) -> None:
        super().__init__(table, sealer=None)  # type: ignore[arg-type] - headers never open a state
        self.read: list[str] = []

    def window_rows(self, due_by: str, partitions: Collection[int]) -> Iterator[WindowRow]:
        for row in super().window_rows(due_by, partitions):
            self.read.append(row[0].decode())
            yield row


class _Worker:
    """A timer over a table, with the partitions it holds set by the test, as the bootstrap
    wires it: the assignment heard, then the rebuild after the rebalance."""

    def __init__(self, table: dict[bytes, bytes]) -> None:
        self.table = table
        self.owned: set[int] = set()
        self.index = DeadlineIndex()
        self.repo = _Repo(table)
        self.timer = DeadlineTimer(self.index, self.repo, None, None, ManualClock(T0),  # type: ignore[arg-type]
                                   "deadlines", "events", lambda: set(self.owned))
        self.kept: list[frozenset[int]] = []

    @property
    def read(self) -> list[str]:
        return self.repo.read

    async def rebalance(self, generation: int, owned: Iterable[int], complete: bool = True) -> bool:
        self.timer.revoked()
        self.owned = set(owned)
        self.timer.assigned(self.owned, generation)
        if not complete:
            return False  # a newer rebalance began before this one completed
        self.read.clear()
        return await self.timer.rebuild_in_turns(kept=self.kept.append)

    def partitions_read(self) -> set[int]:
        return {int(key[2:]) % PARTITIONS for key in self.read}

    def due(self) -> list[str]:
        return sorted(e.citizen_key for e in self.index.pop_due(DUE, self.owned))


async def _fresh(table: dict[bytes, bytes], owned: set[int]) -> tuple[list[str], int]:
    """What a worker reading every row holds: (citizens due, deadlines beyond the window)."""
    fresh = _Worker(table)
    assert await fresh.rebalance(1, owned)
    beyond = fresh.index.beyond
    return fresh.due(), beyond


async def test_r3_1_a_rebalance_reads_only_the_partitions_new_to_the_worker() -> None:
    table = _table()
    worker = _Worker(table)
    assert await worker.rebalance(1, {0, 1})
    assert worker.partitions_read() == {0, 1} and worker.kept == [frozenset()]
    # The step handles citizen 4's R3.1 (partition 0): its row and the index both lose it.
    table[b"c-00004"] = _row(4, soon=False)
    worker.index.replace_pending("c-00004", 0, (Deadline("R5.1", date(2027, 3, 2), "case-4"),),
                                 before=(Deadline("R5.1", date(2027, 3, 2), "case-4"),
                                         Deadline("R3.1", date(2026, 3, 2), "case-4")))
    assert await worker.rebalance(2, {0, 1, 2})
    assert worker.partitions_read() == {2} and worker.kept[-1] == frozenset({0, 1})
    assert worker.timer.ready
    expected_due, expected_beyond = await _fresh(table, {0, 1, 2})
    assert worker.index.beyond == expected_beyond
    assert worker.due() == expected_due and "c-00004" not in expected_due


async def test_r3_1_a_partition_given_away_is_let_go_of_and_read_again_when_it_comes_back() -> None:
    table = _table()
    worker = _Worker(table)
    assert await worker.rebalance(1, {0, 1})
    # Generation 2 gives partition 1 away; another worker handles its citizens' R3.1 meanwhile.
    assert not await worker.rebalance(2, {0}, complete=False)
    for i in range(1, ROWS, PARTITIONS):
        table[f"c-{i:05d}".encode()] = _row(i, soon=False)
    assert await worker.rebalance(3, {0, 1})
    assert worker.partitions_read() == {1} and worker.kept[-1] == frozenset({0})
    expected_due, expected_beyond = await _fresh(table, {0, 1})
    assert worker.due() == expected_due and worker.index.beyond == expected_beyond
    assert not any(int(key[2:]) % PARTITIONS == 1 for key in expected_due)


async def test_r3_1_a_generation_missed_reads_every_row() -> None:
    """A worker the group went on without (expelled, back later) cannot know who held its
    partitions meanwhile."""
    table = _table()
    worker = _Worker(table)
    assert await worker.rebalance(1, {0, 1})
    assert await worker.rebalance(3, {0, 1})
    assert worker.partitions_read() == {0, 1} and worker.kept[-1] == frozenset()
    assert worker.due() == (await _fresh(table, {0, 1}))[0]


async def test_r3_1_a_rebuild_cut_short_keeps_what_it_kept_and_reads_the_rest_next_time() -> None:
    table = _table(MOVE_ROWS_PER_TURN * 3)  # a scan of several turns
    worker = _Worker(table)
    assert await worker.rebalance(1, {0, 1})
    worker.timer.revoked()
    worker.owned = {0, 1, 2, 3}
    worker.timer.assigned(worker.owned, 2)
    assert not await worker.timer.rebuild_in_turns(current=lambda: False)  # an older rebalance's completion
    turns = 0

    def latest() -> bool:
        nonlocal turns
        turns += 1
        return turns < 2

    assert not await worker.timer.rebuild_in_turns(current=latest)  # a newer one began during the scan
    assert turns == 2 and not worker.timer.ready
    assert await worker.rebalance(3, {0, 1, 2, 3})
    assert worker.partitions_read() == {2, 3} and worker.kept[-1] == frozenset({0, 1})
    assert worker.due() == (await _fresh(table, {0, 1, 2, 3}))[0]


async def test_r3_1_a_rebuild_without_an_assignment_heard_reads_every_row() -> None:
    table = _table()
    worker = _Worker(table)
    assert await worker.rebalance(1, {0, 1})
    worker.timer.revoked()
    worker.read.clear()
    assert await worker.timer.rebuild_in_turns()
    assert worker.partitions_read() == {0, 1}


async def test_r3_1_a_window_move_cut_short_by_a_rebalance_makes_the_next_rebuild_read_every_row() -> None:
    table = _table()
    worker = _Worker(table)
    assert await worker.rebalance(1, {0, 1})
    worker.index.begin_move(worker.index.horizon + 86_400)  # a move under way...
    assert await worker.rebalance(2, {0, 1})  # ...when the rebalance comes
    assert worker.partitions_read() == {0, 1} and worker.kept[-1] == frozenset()
    assert not worker.index.moving


async def test_r3_1_a_deadline_in_flight_on_a_partition_given_away_fires_again_when_it_comes_back() -> None:
    """Sent, and its partition given away before the step handled it: the row still has it
    pending. When the partition comes back, nothing of the old flight may hold it back."""
    table = _table()
    worker = _Worker(table)
    assert await worker.rebalance(1, {0, 1})
    sent = worker.index.pop_due(DUE, {1})
    assert sent and all(e.partition == 1 for e in sent)
    assert await worker.rebalance(2, {0})
    assert await worker.rebalance(3, {0, 1})
    assert worker.partitions_read() == {1}
    assert sorted(e.citizen_key for e in worker.index.pop_due(DUE, {1})) == sorted(e.citizen_key for e in sent)


async def test_r3_1_a_partition_whose_store_took_in_rows_while_the_steps_stopped_is_read_again() -> None:
    """Held through the rebalance, but its store restored rows from the changelog meanwhile (a
    worker the group had fenced off still writing, say): what the index holds of it may be old,
    so its rows are read again; the other partition is kept. The marks are those of the first
    stop after the last rebuild: a second rebalance before the rebuild does not hide a restore
    that came before it."""
    table = _table()
    worker = _Worker(table)
    stored = {0: 10, 1: 20}
    assert await worker.rebalance(1, {0, 1})
    worker.timer.revoked(stored.get)
    worker.owned = {0, 1}
    worker.timer.assigned(worker.owned, 2)
    stored[1] = 25  # the restore of generation 2's recovery
    for i in range(1, ROWS, PARTITIONS):
        table[f"c-{i:05d}".encode()] = _row(i, soon=False)
    worker.timer.revoked(stored.get)  # generation 3 begins before generation 2's rebuild
    worker.timer.assigned(worker.owned, 3)
    worker.read.clear()
    assert await worker.timer.rebuild_in_turns(kept=worker.kept.append, marks=stored.get)
    assert worker.partitions_read() == {1} and worker.kept[-1] == frozenset({0})
    assert worker.due() == (await _fresh(table, {0, 1}))[0]
    # Marks unchanged through the next rebalance: everything held is kept.
    worker.timer.revoked(stored.get)
    worker.timer.assigned(worker.owned, 4)
    worker.read.clear()
    assert await worker.timer.rebuild_in_turns(kept=worker.kept.append, marks=stored.get)
    assert worker.read == [] and worker.kept[-1] == frozenset({0, 1})
