"""The index rebuilt after a rebalance a few thousand rows per turn of the event loop (a million
rows take seconds, during which the consumers' heartbeats, the door and the operator pages must
go on): the same index as a rebuild in one go, and a rebuild a newer rebalance overtakes leaves
the index not ready rather than finishing with rows of partitions no longer held (R3.1)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

from processors.model import Deadline
from streams.citizen_repo import CitizenRepository
from streams.citizen_rows import RowHeader, encode_row
from streams.clock import ManualClock
from streams.deadline_timer import MOVE_ROWS_PER_TURN, DeadlineTimer
from streams.deadlines import DeadlineIndex

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
ROWS = MOVE_ROWS_PER_TURN * 3 + 17


def _table() -> dict[bytes, bytes]:
    """Rows with a deadline due tomorrow, one due next year, both, none, and erased ones."""
    table: dict[bytes, bytes] = {}
    for i in range(ROWS):
        soon = [Deadline("R3.1", date(2026, 3, 2), f"case-{i}")] if i % 3 == 0 else []
        later = [Deadline("R5.1", date(2027, 3, 2), f"case-{i}")] if i % 2 == 0 else []
        erased = i % 97 == 0
        header = RowHeader(i % 4, () if erased else tuple(soon + later), erased=erased)
        table[f"c-{i:06d}".encode()] = encode_row(header, b"" if erased else b"\xd5\x01sealed")
    return table


def _timer(table: dict[bytes, bytes]) -> tuple[DeadlineTimer, DeadlineIndex]:
    index = DeadlineIndex()
    repo = CitizenRepository(table, sealer=None)  # type: ignore[arg-type] - headers never open a state
    return DeadlineTimer(index, repo, None, None, ManualClock(T0), "deadlines", "events",  # type: ignore[arg-type]
                         lambda: {0, 1, 2, 3}), index


async def test_r3_1_a_rebuild_in_turns_holds_what_a_rebuild_in_one_go_holds_and_lets_the_loop_run() -> None:
    table = _table()
    whole_timer, whole = _timer(table)
    whole_timer.rebuild()
    turns_timer, turns = _timer(table)
    others_ran = 0

    async def another_task() -> None:
        nonlocal others_ran
        while True:
            others_ran += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(another_task())
    await asyncio.sleep(0)
    before = others_ran
    seen: list[str] = []
    assert await turns_timer.rebuild_in_turns(also=lambda key, header: seen.append(key))
    other.cancel()
    assert others_ran - before >= ROWS // MOVE_ROWS_PER_TURN  # the loop turned between reads
    # ``also`` sees the rows with something besides deadlines to rebuild: here the erased ones.
    assert turns_timer.ready and sorted(seen) == sorted(f"c-{i:06d}" for i in range(ROWS) if i % 97 == 0)
    assert (len(turns), turns.beyond) == (len(whole), whole.beyond) and len(whole) > 0 and whole.beyond > 0
    due = datetime(2026, 3, 3, tzinfo=UTC)
    assert sorted(e.deadline_id for e in turns.pop_due(due, {0, 1, 2, 3})) == sorted(
        e.deadline_id for e in whole.pop_due(due, {0, 1, 2, 3}))


async def test_r3_1_a_rebuild_overtaken_by_a_rebalance_stops_and_leaves_the_index_not_ready() -> None:
    timer, index = _timer(_table())

    async def rebalance_after_one_turn() -> None:
        await asyncio.sleep(0)
        timer.revoked()

    overtaking = asyncio.create_task(rebalance_after_one_turn())
    assert not await timer.rebuild_in_turns()
    await overtaking
    assert not timer.ready and len(index) == 0


async def test_r3_1_a_rebuild_for_a_rebalance_no_longer_the_latest_stops_before_reading_on() -> None:
    """An older rebalance's recovery can complete while a newer one hands the stores over: its
    rebuild does not start, and one under way stops at its next turn, before the scan touches
    the stores again."""
    timer, index = _timer(_table())
    assert not await timer.rebuild_in_turns(current=lambda: False)
    assert not timer.ready and len(index) == 0

    turns = 0

    def latest() -> bool:
        nonlocal turns
        turns += 1
        return turns < 3  # a newer rebalance begins during the second turn

    assert not await timer.rebuild_in_turns(current=latest)
    assert turns == 3 and not timer.ready
