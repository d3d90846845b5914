"""The deadline index holds only a window of the deadlines due soon; the rest stay in the rows'
headers until the window moves over them (issue 15). Over sixty simulated days of hourly ticks,
with the step rewriting rows while the window moves, a restart and a rebalance on the way, every
deadline (R3.1 and the others alike) is handled exactly once, never before it is due and
at the first tick at which it is due.

The rows, the step and the two workers are simulated here; the index and the timer's window
move are the real ones. What goes over Kafka (DeadlineDue, the step's batches) is covered by
the worker's Kafka tests (tests/integration/test_deadlines_durable.py)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

import streams.deadline_timer as deadline_timer
from processors.clock import passed_at
from processors.model import Deadline
from streams.citizen_rows import RowHeader
from streams.deadline_timer import DeadlineTimer
from streams.deadlines import DeadlineIndex
from streams.step_policy import DEADLINE_WINDOW_S

START = datetime(2026, 1, 1, 12, tzinfo=UTC)
TICK = timedelta(hours=1)
PARTITIONS = 4


@dataclass
class Rows:
    """The citizens' rows (partition and pending deadlines), as the table holds them."""

    pending: dict[str, list[Deadline]] = field(default_factory=dict)
    handled: Counter[str] = field(default_factory=Counter)
    late_ticks: list[float] = field(default_factory=list)

    @staticmethod
    def partition(citizen: str) -> int:
        return int(citizen.split("-")[1]) % PARTITIONS

    def headers(self) -> Iterator[tuple[str, RowHeader]]:
        # A snapshot, as a RocksDB iterator reads the table as it was when the scan began.
        snapshot = {key: tuple(pending) for key, pending in self.pending.items()}
        for key, pending in snapshot.items():
            yield key, RowHeader(self.partition(key), pending)


class Clock:
    def __init__(self) -> None:
        self.at = START

    def now(self) -> datetime:
        return self.at


class Worker:
    """One worker's index and timer, over the partitions it owns."""

    def __init__(self, rows: Rows, clock: Clock, owned: set[int]) -> None:
        self.rows, self.owned = rows, owned
        self.index = DeadlineIndex()
        none: Any = None
        self.timer = DeadlineTimer(self.index, _OwnedRows(rows, owned), none, none, clock, "deadlines", "events",
                                   lambda: self.owned)
        self.timer.rebuild()

    def step(self, citizen: str) -> None:
        """What the citizen step does after it wrote a row: the index follows the row."""
        self.index.replace_pending(citizen, Rows.partition(citizen), self.rows.pending[citizen])


class _OwnedRows:
    def __init__(self, rows: Rows, owned: set[int]) -> None:
        self._rows, self._owned = rows, owned

    def headers(self) -> Iterator[tuple[str, RowHeader]]:
        return ((k, h) for k, h in self._rows.headers() if h.partition in self._owned)


def _deadline(rng: random.Random, n: int, today: date) -> Deadline:
    return Deadline(rule=rng.choice(["R3.1", "R4.1", "R5.1", "R8.2"]),
                    due_date=today + timedelta(days=rng.randint(0, 50)), case_id=f"case-{n}")


async def _tick(worker: Worker, clock: Clock, rows: Rows) -> None:
    now = clock.now()
    if now.timestamp() + DEADLINE_WINDOW_S / 2 >= worker.index.horizon:
        await worker.timer.move_window(now)
    for entry in worker.index.pop_due(now, worker.owned):
        # The step handles the DeadlineDue: acts once (the row remembers), drops it from the row.
        pending = rows.pending[entry.citizen_key]
        kept = [d for d in pending if d.deadline_id != entry.deadline_id]
        if len(kept) < len(pending):
            rows.handled[f"{entry.citizen_key}/{entry.deadline_id}"] += 1
            rows.late_ticks.append((now.timestamp() - entry.fires_at) / TICK.total_seconds())
        rows.pending[entry.citizen_key] = kept
        worker.step(entry.citizen_key)


async def _writes_during_moves(workers: list[Worker], rows: Rows, rng: random.Random, clock: Clock,
                               stop: asyncio.Event, counter: list[int]) -> None:
    """New cases arriving while the timer reads the rows: a deadline added to a row that the
    scan has already read, or is about to read from its snapshot, must still be held."""
    while not stop.is_set():
        citizen = f"c-{rng.randrange(300)}"
        counter[0] += 1
        rows.pending.setdefault(citizen, []).append(_deadline(rng, counter[0], clock.now().date()))
        for worker in workers:
            if Rows.partition(citizen) in worker.owned:
                worker.step(citizen)
        await asyncio.sleep(0)


async def _simulate(rng: random.Random) -> Rows:
    rows, clock = Rows(), Clock()
    counter = [0]
    for _ in range(600):
        citizen = f"c-{rng.randrange(300)}"
        counter[0] += 1
        rows.pending.setdefault(citizen, []).append(_deadline(rng, counter[0], START.date()))
    expected = {f"{c}/{d.deadline_id}" for c, ds in rows.pending.items() for d in ds}
    workers = [Worker(rows, clock, {0, 1, 2, 3})]
    assert workers[0].index.beyond > 0, "the window must leave some deadlines in the rows"
    stop = asyncio.Event()
    writer = asyncio.create_task(_writes_during_moves(workers, rows, rng, clock, stop, counter))
    for hour in range(60 * 24):
        if hour == 20 * 24:  # a restart: a new index from the rows
            workers[0] = Worker(rows, clock, {0, 1, 2, 3})
        if hour == 35 * 24:  # a rebalance: partitions 2 and 3 move to a second worker
            workers[0].owned.difference_update({2, 3})
            workers[0].timer.revoked()
            workers[0].timer.rebuild()
            workers.append(Worker(rows, clock, {2, 3}))
        if hour == 45 * 24:
            stop.set()
            await writer
            expected |= {f"{c}/{d.deadline_id}" for c, ds in rows.pending.items() for d in ds}
        for worker in workers:
            await _tick(worker, clock, rows)
        await asyncio.sleep(0)  # new cases between ticks too
        clock.at += TICK
    for worker in workers:
        await _tick(worker, clock, rows)
    due_by_now = {e for e in expected if _fires_at(e) <= clock.now().timestamp()}
    assert len(due_by_now) > 1000
    missing = due_by_now - set(rows.handled)
    assert not missing, f"{len(missing)} deadlines never fired"
    return rows


def _fires_at(handled_id: str) -> float:
    due = handled_id.rsplit("|", 1)[1]
    return passed_at(date.fromisoformat(due)).timestamp()


@pytest.mark.parametrize("seed", range(3))
async def test_r3_1_every_deadline_fires_once_as_the_window_moves_across_a_restart_and_a_rebalance(
        monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    monkeypatch.setattr(deadline_timer, "MOVE_ROWS_PER_TURN", 7)  # many turns per move: writes interleave
    rows = await _simulate(random.Random(seed))
    assert all(count == 1 for count in rows.handled.values()), "a deadline acted twice"
    assert min(rows.late_ticks) >= 0, "a deadline fired before it was due"
    # A deadline written due "now" after its worker's tick (the writer runs between ticks and
    # during another worker's) waits for the next tick: one tick, never more.
    assert max(rows.late_ticks) <= 1, "a deadline fired more than one tick late"


def test_the_window_holds_only_what_is_due_soon() -> None:
    index = DeadlineIndex()
    today = START.date()
    near = Deadline("R3.1", today, "near")
    far = Deadline("R3.1", today + timedelta(days=30), "far")
    index.rebuild([("c-1", 0, (near, far))], horizon=START.timestamp() + DEADLINE_WINDOW_S)
    assert len(index) == 1 and index.beyond == 1
    index.replace_pending("c-1", 0, (near, far))  # the step rewrites the row: still only one held
    assert len(index) == 1
    assert passed_at(far.due_date).timestamp() >= index.horizon
