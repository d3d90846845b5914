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
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

import streams.deadline_timer as deadline_timer
from processors.clock import passed_at
from processors.model import Deadline
from streams.citizen_repo import WindowRow
from streams.citizen_rows import RowHeader, encode_row, window_of
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
    handled: Counter[str] = field(default_factory=Counter)  # acted on (the row still had it)
    sent: Counter[str] = field(default_factory=Counter)  # DeadlineDue sent by any worker
    late_ticks: list[float] = field(default_factory=list)
    # Sent, not yet handled by the step: DeadlineDue records on their way through Kafka.
    in_flight: list[tuple[str, str, float]] = field(default_factory=list)

    @staticmethod
    def partition(citizen: str) -> int:
        return int(citizen.split("-")[1]) % PARTITIONS

    def headers(self) -> Iterator[tuple[str, RowHeader]]:
        for key, pending in list(self.pending.items()):
            yield key, RowHeader(self.partition(key), tuple(pending))


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
        self.timer.assigned(owned, 1)
        self.timer.rebuild()
        self.popped: set[str] = set()  # sent by this index, not yet handled

    def step(self, citizen: str, before: tuple[Deadline, ...]) -> None:
        """What the citizen step does when it rewrites a row: the index follows the row."""
        self.index.replace_pending(citizen, Rows.partition(citizen), self.rows.pending[citizen], before)

    def check_count(self) -> None:
        """The index's count is exact: held + beyond + in flight = every pending deadline it owns."""
        owned = sum(len(p) for c, p in self.rows.pending.items() if Rows.partition(c) in self.owned)
        assert len(self.index) + self.index.beyond + len(self.popped) == owned


class _OwnedRows:
    """The worker's view of the table (``CitizenRepository``'s scan methods): its partitions only."""

    def __init__(self, rows: Rows, owned: set[int]) -> None:
        self._rows, self._owned = rows, owned

    def window_rows(self, due_by: str, partitions: Collection[int]) -> Iterator[WindowRow]:
        for key, header in self._rows.headers():
            if header.partition in self._owned and header.partition in partitions:
                yield key.encode(), *window_of(encode_row(header, b""), due_by)

    def citizen_keys(self) -> list[bytes]:
        return [k.encode() for k in self._rows.pending if Rows.partition(k) in self._owned]

    def header(self, key: bytes) -> RowHeader | None:
        pending = self._rows.pending.get(key.decode())
        return None if pending is None else RowHeader(Rows.partition(key.decode()), tuple(pending))


def _deadline(rng: random.Random, n: int, today: date) -> Deadline:
    return Deadline(rule=rng.choice(["R3.1", "R4.1", "R5.1", "R8.2"]),
                    due_date=today + timedelta(days=rng.randint(0, 50)), case_id=f"case-{n}")


async def _tick(worker: Worker, clock: Clock, rows: Rows) -> None:
    """The timer's tick: the window moves when half of it is used up, then what is due is sent."""
    now = clock.now()
    if now.timestamp() + DEADLINE_WINDOW_S / 2 >= worker.index.horizon:
        await worker.timer.move_window(now)
    for entry in worker.index.pop_due(now, worker.owned):
        worker.popped.add(f"{entry.citizen_key}/{entry.deadline_id}")
        rows.sent[f"{entry.citizen_key}/{entry.deadline_id}"] += 1
        rows.in_flight.append((entry.citizen_key, entry.deadline_id, entry.fires_at))


def _handle_in_flight(workers: list[Worker], rows: Rows, now: datetime) -> None:
    """The step handles the DeadlineDue records sent a tick ago: it acts once (the row remembers)
    and drops the deadline from the row; the owning worker's index follows the row."""
    arrived, rows.in_flight = rows.in_flight, []
    for citizen, deadline_id, fires_at in arrived:
        pending = rows.pending[citizen]
        kept = [d for d in pending if d.deadline_id != deadline_id]
        if len(kept) < len(pending):
            rows.handled[f"{citizen}/{deadline_id}"] += 1
            rows.late_ticks.append((now.timestamp() - fires_at) / TICK.total_seconds() - 1)
        rows.pending[citizen] = kept
        for worker in workers:
            worker.popped.discard(f"{citizen}/{deadline_id}")
            if Rows.partition(citizen) in worker.owned:
                worker.step(citizen, tuple(pending))


async def _writes_during_moves(workers: list[Worker], rows: Rows, rng: random.Random, clock: Clock,
                               stop: asyncio.Event, counter: list[int]) -> None:
    """New cases arriving while the timer reads the rows: a deadline added to a row that the
    scan has already read, or is about to read from its snapshot, must still be held."""
    while not stop.is_set():
        citizen = f"c-{rng.randrange(300)}"
        counter[0] += 1
        before = tuple(rows.pending.get(citizen, ()))
        rows.pending[citizen] = [*before, _deadline(rng, counter[0], clock.now().date())]
        for worker in workers:
            if Rows.partition(citizen) in worker.owned:
                worker.step(citizen, before)
        await asyncio.sleep(0)


async def _simulate(rng: random.Random) -> Rows:
    """Sixty days of hourly ticks; returns the rows with what was sent and handled."""
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
    resent: set[str] = set()  # in flight when its worker was replaced: may be sent once more
    # Both an hour after a local midnight (23:00 UTC, START being 12:00 UTC): deadlines are in flight.
    restart, rebalance = 20 * 24 + 12, 35 * 24 + 12
    for hour in range(60 * 24):
        if hour in (restart, rebalance):
            resent |= {f"{c}/{d}" for c, d, _ in rows.in_flight}
        if hour == restart:  # a restart: a new index from the rows, with deadlines still in flight
            workers[0] = Worker(rows, clock, {0, 1, 2, 3})
        if hour == rebalance:  # a rebalance: partitions 2 and 3 move to a second worker
            workers[0].owned.difference_update({2, 3})
            workers[0].timer.revoked()
            workers[0].timer.assigned(workers[0].owned, 2)  # held through it: 0 and 1 keep their entries
            assert await workers[0].timer.rebuild_in_turns()
            # What it had in flight on 0 and 1 is still in flight; on 2 and 3 the other worker's now.
            workers[0].popped = {p for p in workers[0].popped if Rows.partition(p.split("/")[0]) in workers[0].owned}
            workers.append(Worker(rows, clock, {2, 3}))
        _handle_in_flight(workers, rows, clock.now())
        for worker in workers:
            worker.check_count()
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
    _handle_in_flight(workers, rows, clock.now() + TICK)
    sent_twice = {d for d, n in rows.sent.items() if n > 1}
    assert resent, "nothing was in flight at the restart or the rebalance"
    assert sent_twice <= resent, f"sent twice outside a restart or rebalance: {sorted(sent_twice - resent)[:3]}"
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
    index.rebuild([("c-1", 0, (near, far), 0)], horizon=START.timestamp() + DEADLINE_WINDOW_S)
    assert len(index) == 1 and index.beyond == 1
    index.replace_pending("c-1", 0, (near, far))  # the step rewrites the row: still only one held
    assert len(index) == 1
    assert passed_at(far.due_date).timestamp() >= index.horizon


async def test_a_rebalance_during_a_window_move_stops_it_and_the_rebuild_holds_everything_due(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deadline_timer, "MOVE_ROWS_PER_TURN", 5)
    rng, rows, clock = random.Random(11), Rows(), Clock()
    for n in range(400):
        rows.pending.setdefault(f"c-{n % 200}", []).append(_deadline(rng, n, START.date()))
    worker = Worker(rows, clock, {0, 1, 2, 3})
    clock.at += timedelta(days=10)
    move = asyncio.create_task(worker.timer.move_window(clock.now()))
    for _ in range(3):
        await asyncio.sleep(0)  # a few slices read
    assert worker.index.moving
    worker.owned.discard(3)  # the rebalance: partition 3 goes elsewhere
    worker.timer.revoked()
    worker.timer.rebuild()
    await move
    assert not worker.index.moving
    due_soon = {f"{c}/{d.deadline_id}" for c, ds in rows.pending.items() if Rows.partition(c) != 3 for d in ds
                if passed_at(d.due_date).timestamp() < worker.index.horizon}
    popped = {f"{e.citizen_key}/{e.deadline_id}" for e in worker.index.pop_due(clock.now() + timedelta(days=2),
                                                                               worker.owned, limit=10_000)}
    assert popped == due_soon and popped
